"""Pipelines: components combined into something that generates, saved and loaded as one directory."""

from thermogen.pipelines.base import Pipeline

__all__ = ["Pipeline"]
