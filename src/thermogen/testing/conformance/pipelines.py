"""Conformance checks for pipelines (:class:`thermogen.pipelines.Pipeline`).

A pipeline class states how to build a small instance in its ``conformance`` dict:
``"components"`` maps each constructor argument to a component config
(``{"_class_name": <registered name>, ...}``) or a plain value, and ``"call"`` holds
extra keywords for the call that makes images (every pipeline takes ``batch_size``,
``generator``, ``output_type`` and ``progress``).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from thermogen import registry
from thermogen.config import from_config
from thermogen.pipelines.base import Pipeline
from thermogen.testing.conformance.components import claims
from thermogen.testing.conformance.report import CheckResult, passed, require, skipped


def build(pipeline: Any) -> Pipeline:
    """A small instance of a pipeline given by registered name, class (with stated components) or instance."""
    if isinstance(pipeline, str):
        pipeline = registry.get("pipelines", pipeline)
    if not isinstance(pipeline, type):
        return pipeline
    parts = {
        name: from_config(value) if isinstance(value, dict) and "_class_name" in value else value
        for name, value in claims(pipeline).get("components", {}).items()
    }
    return pipeline(**parts)


def images(pipe: Pipeline) -> torch.Tensor:
    """Two images made with seed 0 as a tensor (the pipeline's stated ``call`` keywords added)."""
    keywords = {"batch_size": 2, "output_type": "pt", "progress": False, **claims(pipe).get("call", {})}
    return pipe(generator=torch.Generator().manual_seed(0), **keywords)[0]


def check_save_load_same_images(pipeline: Any) -> CheckResult:
    """``save_pretrained`` -> ``from_pretrained`` gives a pipeline of the same config making the same images."""
    pipe = build(pipeline)
    before = images(pipe)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(Path(tmp) / "pipe")
        loaded = type(pipe).from_pretrained(Path(tmp) / "pipe")
    require(
        loaded.to_config() == pipe.to_config(),
        "save_load_same_images",
        "model_index.json after a round trip",
        f"{loaded.to_config()} vs {pipe.to_config()}",
    )
    after = images(loaded)
    difference = float((before.double() - after.double()).abs().max())
    require(
        difference == 0.0,
        "save_load_same_images",
        "images with seed 0 after save -> load",
        f"max |difference| {difference:.3g}",
    )
    require(torch.equal(before, images(pipe)), "save_load_same_images", "two calls with seed 0", "images differ")
    return passed("save_load_same_images", f"{tuple(before.shape)} identical")


def check_hub_round_trip(pipeline: Any) -> CheckResult:
    """``push_to_hub`` to the kit's loopback Hub -> ``from_pretrained(repo_id)`` makes the same images."""
    from thermogen.testing.hub_client import local_hub

    pipe = build(pipeline)
    before = images(pipe)
    try:
        hub_context = local_hub()
        hub = hub_context.__enter__()
    except RuntimeError as exc:  # an unknown huggingface_hub major version
        return skipped("hub_round_trip", str(exc))
    try:
        repo_id = f"conformance/pipe-{uuid.uuid4().hex[:8]}"
        pipe.push_to_hub(repo_id, token=hub.token)
        files = hub.list_files(repo_id)
        loaded = type(pipe).from_pretrained(repo_id)
        after = images(loaded)
    finally:
        hub_context.__exit__(None, None, None)
    require("model_index.json" in files, "hub_round_trip", f"files pushed to {repo_id}", str(files))
    difference = float((before.double() - after.double()).abs().max())
    require(
        difference == 0.0,
        "hub_round_trip",
        "images with seed 0 after push -> load",
        f"max |difference| {difference:.3g}",
    )
    return passed("hub_round_trip", f"{len(files)} files, images identical")


CHECKS = (check_save_load_same_images, check_hub_round_trip)
"""Every pipeline check, in the order :func:`~thermogen.testing.conformance.run_checks` runs them."""
