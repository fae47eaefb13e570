"""Weight averaging of saved snapshots of one training run (stochastic weight averaging, post hoc).

Izmailov et al. 2018 ("Averaging Weights Leads to Wider Optima and Better
Generalization", arXiv:1803.05407) average the weights that one run visits along
its trajectory, at a constant learning rate, taken every c steps:

    w_avg = (1 / n) sum_i w_i.

Karras et al. 2024 (EDM2, section 3) make the same point for generative models:
averages of snapshots can be formed after training and compared. thermogen's
trainers keep a pipeline every ``snapshot_every`` steps (``OUT/snapshots/step_N``,
see :class:`thermogen.training.loop.LoopConfig`); :func:`average_pipelines` (and
``thermogen average-weights``) averages them.

For an EBM trained by contrastive divergence this matters: the energy landscape
keeps rotating between modes (the classes the chains fall into change every few
thousand steps), and the average of late snapshots draws all ten digits where each
snapshot over-draws a few (docs/guides/train-ebm.md).

Every ``nn.Module`` component (the network) is averaged: floating-point
parameters and buffers (BatchNorm statistics included) in float64, cast back;
integer buffers are taken from the last pipeline. Every other component (schedule,
sampler, replay buffer) is the last pipeline's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

from thermogen.pipelines.base import Pipeline

P = TypeVar("P", bound=Pipeline)


def average_state_dicts(states: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """The uniform mean of ``states`` (same keys, shapes and dtypes), floating-point tensors only.

    Floating-point tensors are summed in float64 and cast back to their dtype; every
    other tensor (e.g. BatchNorm's ``num_batches_tracked``) is the last state's.

    Raises:
        ValueError: no states, or a state whose keys, shapes or dtypes differ from the first's
            (the message names the state's index and the tensor).

    Example::

        mean = average_state_dicts([a.state_dict(), b.state_dict()])
        model.load_state_dict(mean)                          # (a + b) / 2, tensor by tensor
    """
    if not states:
        raise ValueError("no states to average; expected at least one")
    first = states[0]
    for index, state in enumerate(states[1:], start=1):
        if set(state) != set(first):
            missing, extra = sorted(set(first) - set(state)), sorted(set(state) - set(first))
            raise ValueError(f"state {index} has other tensors than state 0 (missing {missing}, extra {extra})")
        for name, tensor in state.items():
            if tensor.shape != first[name].shape or tensor.dtype != first[name].dtype:
                raise ValueError(
                    f"state {index}: {name} is {tuple(tensor.shape)} {tensor.dtype}; "
                    f"state 0 has {tuple(first[name].shape)} {first[name].dtype}"
                )
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(state[name].detach().to("cpu", torch.float64) for state in states)
            averaged[name] = (total / len(states)).to(tensor.dtype)  # type: ignore[union-attr]
        else:
            averaged[name] = states[-1][name].detach().cpu().clone()
    return averaged


def average_pipelines(pipelines: Sequence[P]) -> P:
    """A copy of the last pipeline whose networks hold the mean weights of all of them.

    Args:
        pipelines: pipelines of one class with networks of one architecture, e.g. the
            snapshots of one run (``OUT/snapshots/step_*``), oldest first.

    Returns:
        a new pipeline (the inputs are not changed): every ``nn.Module`` component is the
        uniform average (:func:`average_state_dicts`), every other component the last pipeline's.
        The last pipeline's model card is dropped (it describes one snapshot's weights); a save
        writes a card generated from the components.

    Raises:
        ValueError: no pipelines, pipelines of different classes, or networks that do not match.

    Example::

        snapshots = [Pipeline.from_pretrained(f"runs/ebm/snapshots/step_{k:06d}") for k in (20000, 22000, 24000)]
        average_pipelines(snapshots).save_pretrained("ebm-averaged")
    """
    if not pipelines:
        raise ValueError("no pipelines to average; expected at least one")
    last = pipelines[-1]
    for index, pipeline in enumerate(pipelines):
        if type(pipeline) is not type(last):
            raise ValueError(
                f"pipeline {index} is {type(pipeline).__name__}, the last one {type(last).__name__}; "
                "expected pipelines of one class (snapshots of one run)"
            )
    result = copy.deepcopy(last)
    result.model_card = None
    averaged = []
    for name, component in result.components.items():
        if isinstance(component, nn.Module):
            try:
                mean = average_state_dicts([p.components[name].state_dict() for p in pipelines])
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            component.load_state_dict(mean)
            averaged.append(name)
    if not averaged:
        raise ValueError(f"a {type(last).__name__} without a network component; nothing to average")
    return result
