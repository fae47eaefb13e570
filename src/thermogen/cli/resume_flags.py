"""``train --resume``: flags that would change what the checkpoint is refuse, naming each.

A resumed run continues the checkpoint's network, schedule and sampler. The
architecture and sampler flags default to None ("as the checkpoint has it"), so
only flags the user typed are compared; one that differs from the checkpoint is
an error, and so is data whose image shape differs from the network's.
"""

from __future__ import annotations

import argparse
from typing import Any

from thermogen import registry
from thermogen.errors import ConfigError


def check_resume_flags(args: argparse.Namespace, pipeline: Any, sample_shape: tuple[int, ...]) -> None:
    """Raise ConfigError listing every flag (and the data shape) that conflicts with the checkpoint."""
    conflicts = []
    have = tuple(int(n) for n in pipeline.sample_shape())
    if tuple(sample_shape) != have:
        conflicts.append(f"the data has images of shape {tuple(sample_shape)}, the checkpoint's network {have}")
    for flag, given, stored in _flags(args, pipeline):
        if given is not None and given != stored:
            conflicts.append(f"{flag} {_show(given)} (the checkpoint has {_show(stored)})")
    if conflicts:
        raise ConfigError(
            "--resume continues the checkpoint as it is; these differ from it: "
            + "; ".join(conflicts)
            + ". Drop the flags, or start a new run in another --out"
        )


def _flags(args: argparse.Namespace, pipeline: Any) -> list[tuple[str, Any, Any]]:
    if args.model_kind == "diffusion":
        model = pipeline.model.config
        return [
            ("--model", args.model, registry.name_of("models", type(pipeline.model))),
            ("--widths", _list(args.widths), _list(model.get("widths"))),
            ("--block-depth", args.block_depth, model.get("block_depth")),
            ("--schedule", args.schedule, registry.name_of("schedules", type(pipeline.schedule))),
            ("--sampler", args.sampler, registry.name_of("samplers", type(pipeline.sampler))),
        ]
    sampler = pipeline.sampler.config
    return [
        ("--step-size", args.step_size, sampler.get("step_size")),
        ("--noise", args.noise, sampler.get("noise_std")),
    ]


def _list(value: Any) -> list[int] | None:
    return None if value is None else [int(v) for v in value]


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
