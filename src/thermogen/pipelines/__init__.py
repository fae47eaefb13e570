"""Pipelines: components combined into something that generates, saved and loaded as one directory."""

from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline, DiffusionPipelineOutput
from thermogen.pipelines.ebm import EBMPipeline, EBMPipelineOutput

__all__ = ["DiffusionPipeline", "DiffusionPipelineOutput", "EBMPipeline", "EBMPipelineOutput", "Pipeline"]
