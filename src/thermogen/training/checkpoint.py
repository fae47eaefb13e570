"""Training checkpoints: the pipeline plus the trainer's state, written as one atomic directory.

::

    <out>/checkpoint/
        pipeline/                   a normal pipeline directory (loadable with from_pretrained)
        trainer_state.safetensors   optimizer moments, RNG states, ... (tensors)
        trainer_state.json          step counters and the structure around the tensors

A crash while saving leaves the previous checkpoint as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from thermogen.atomic import atomic_directory, write_json
from thermogen.config_files import read_json_file
from thermogen.errors import CheckpointError
from thermogen.pipelines.base import Pipeline
from thermogen.weights import flatten_state, load_tensors, save_tensors, unflatten_state

PIPELINE_DIR = "pipeline"
STATE_TENSORS = "trainer_state.safetensors"
STATE_JSON = "trainer_state.json"


def save_checkpoint(directory: str | os.PathLike[str], pipeline: Pipeline, state: dict[str, Any]) -> None:
    """Write ``pipeline`` and the nested ``state`` (tensors, numbers, strings) atomically."""
    tensors, skeleton = flatten_state(state)
    with atomic_directory(directory) as tmp:
        (tmp / PIPELINE_DIR).mkdir()
        pipeline.write_to(tmp / PIPELINE_DIR)
        save_tensors(tensors, tmp / STATE_TENSORS)
        write_json(tmp / STATE_JSON, skeleton)


def load_checkpoint_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the trainer state written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: a missing, unreadable or malformed state; the message
            names the file and, where it can, the field.
    """
    root = Path(directory)
    source = root / STATE_JSON
    if not source.is_file():
        raise CheckpointError(f"{root} is not a training checkpoint (no {STATE_JSON}); nothing to resume")
    from thermogen.loading import check_links

    check_links(root)
    skeleton = read_json_file(source, CheckpointError)
    try:
        state = unflatten_state(load_tensors(root / STATE_TENSORS), skeleton)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} holds a {type(state).__name__}; expected a trainer state (a dict)")
    return state
