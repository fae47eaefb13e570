"""Checks of a loaded trainer state, all made before a resume changes anything.

A crafted or damaged ``trainer_state.json`` / ``.safetensors`` pair raises
:class:`~thermogen.errors.CheckpointError` naming the file and the field
(``step``, ``optimizer.state.0.exp_avg``, ``buffers``, ...), and a damaged
``log.jsonl`` names its line, so a failed resume leaves the model, the
optimizer, the replay buffer and the log as they were.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from thermogen.errors import CheckpointError
from thermogen.training.checkpoint import PIPELINE_DIR, STATE_JSON
from thermogen.training.log import read_log
from thermogen.weights import WEIGHTS_NAME, check_state_dict, load_tensors


def check_diffusion_state(trainer: Any, root: Path, state: Mapping[str, Any]) -> None:
    """What :meth:`DiffusionTrainer.load_checkpoint` reads: step, raw weights, optimizer, EMA weights."""
    source = root / STATE_JSON
    check_step(state, source, trainer.config.steps)
    check_log(trainer)
    model = _field(state, "model", Mapping, source)
    _check_tensors(trainer.model.state_dict(), model, f"{source}: field 'model'")
    check_optimizer_state(state, trainer.optimizer, source)
    ema_file = root / PIPELINE_DIR / "model" / WEIGHTS_NAME
    check_state_dict(trainer.ema.model.state_dict(), load_tensors(ema_file), str(ema_file))


def check_ebm_state(trainer: Any, root: Path, state: Mapping[str, Any]) -> None:
    """What :meth:`EBMTrainer.load_checkpoint` reads: step, optimizer, energy model, this rank's buffer."""
    source = root / STATE_JSON
    check_step(state, source, trainer.config.steps)
    check_log(trainer)
    check_optimizer_state(state, trainer.optimizer, source)
    weights = root / PIPELINE_DIR / "energy_model" / WEIGHTS_NAME
    check_state_dict(trainer.model.state_dict(), load_tensors(weights), str(weights))
    buffers = _field(state, "buffers", list, source)
    if not buffers:
        raise CheckpointError(f"{source}: field 'buffers' is empty; expected one replay buffer per process")
    index = trainer.context.rank % len(buffers)
    mine = buffers[index]
    if not isinstance(mine, Mapping) or not all(isinstance(v, torch.Tensor) for v in mine.values()):
        raise CheckpointError(f"{source}: field 'buffers.{index}' is not a set of tensors")
    copy.deepcopy(trainer.buffer).load_state_tensors(mine, source=f"{source}: field 'buffers.{index}'")


def check_step(state: Mapping[str, Any], source: Path, total_steps: int) -> int:
    """``step`` must be an integer in [0, total_steps]."""
    step = _field(state, "step", int, source)
    if isinstance(step, bool) or not 0 <= step <= total_steps:
        raise CheckpointError(
            f"{source}: field 'step' is {step!r}; expected an integer in [0, {total_steps}] "
            f"(the run's --steps is {total_steps})"
        )
    return step


def check_optimizer_state(state: Mapping[str, Any], optimizer: torch.optim.Optimizer, source: Path) -> None:
    """Parameter groups of the same sizes, and per-parameter tensors shaped like their parameter."""
    saved = _field(state, "optimizer", Mapping, source)
    groups = _field(saved, "param_groups", list, source, "optimizer.")
    per_parameter = _field(saved, "state", Mapping, source, "optimizer.")
    ours = optimizer.param_groups
    if len(groups) != len(ours):
        raise CheckpointError(
            f"{source}: field 'optimizer.param_groups' has {len(groups)} groups; expected {len(ours)}"
        )
    parameters: dict[Any, torch.Tensor] = {}
    for i, (group, mine) in enumerate(zip(groups, ours)):
        ids = group.get("params") if isinstance(group, Mapping) else None
        if not isinstance(ids, list) or len(ids) != len(mine["params"]):
            raise CheckpointError(
                f"{source}: field 'optimizer.param_groups.{i}.params' does not list {len(mine['params'])} parameters"
            )
        parameters.update(zip(ids, mine["params"]))
        for key, value in group.items():
            if key != "params" and key in mine and not _same_kind(value, mine[key]):
                raise CheckpointError(
                    f"{source}: field 'optimizer.param_groups.{i}.{key}' is {value!r}; "
                    f"expected a {type(mine[key]).__name__} like {mine[key]!r}"
                )
    for key, values in per_parameter.items():
        field = f"optimizer.state.{key}"
        if key not in parameters or not isinstance(values, Mapping):
            raise CheckpointError(f"{source}: field '{field}' names no parameter of this optimizer")
        shape = tuple(parameters[key].shape)
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0 and tuple(value.shape) != shape:
                raise CheckpointError(
                    f"{source}: field '{field}.{name}' has shape {tuple(value.shape)}; the parameter has {shape}"
                )


def check_log(trainer: Any) -> None:
    """``log.jsonl`` must be readable (a torn last line is fine: the resume drops it)."""
    if trainer.log.enabled:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_log(trainer.log.path)


def _same_kind(saved: Any, ours: Any) -> bool:
    number = (int, float)
    if isinstance(ours, bool) or isinstance(saved, bool) or ours is None or saved is None:
        return type(saved) is type(ours) or ours is None or saved is None
    if isinstance(ours, number):
        return isinstance(saved, number)
    if isinstance(ours, (tuple, list)):
        return isinstance(saved, (tuple, list)) and len(saved) == len(ours) and all(map(_same_kind, saved, ours))
    return isinstance(saved, type(ours))


def _check_tensors(expected: Mapping[str, torch.Tensor], found: Mapping[str, Any], source: str) -> None:
    if not all(isinstance(v, torch.Tensor) for v in found.values()):
        raise CheckpointError(f"{source} holds values that are not tensors")
    check_state_dict(expected, found, source)


def _field(state: Mapping[str, Any], name: str, kind: Any, source: Path, prefix: str = "") -> Any:
    if name not in state:
        raise CheckpointError(f"{source}: field '{prefix}{name}' is missing")
    value = state[name]
    if not isinstance(value, kind):
        expected = getattr(kind, "__name__", str(kind))
        raise CheckpointError(
            f"{source}: field '{prefix}{name}' is a {type(value).__name__}; expected {expected.lower()}"
        )
    return value
