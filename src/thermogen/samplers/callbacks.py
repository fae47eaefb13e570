"""What a per-step callback sees and may answer.

A sampler's ``callback(info)`` runs after every step. It returns ``None`` to
go on, a tensor to replace the current sample, or :data:`STOP` to end the loop
early (the output then holds the sample reached so far).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from torch import Tensor


class _Stop:
    def __repr__(self) -> str:
        return "thermogen.samplers.STOP"


STOP: Final = _Stop()
"""Return this from a callback to stop sampling after the current step."""


@dataclass(frozen=True)
class StepInfo:
    """The state after one step.

    Attributes:
        step: index of the step just taken, from 0.
        num_steps: number of steps planned.
        t: diffusion time reached (a float) for diffusion samplers; None for energy samplers.
        sample: the current sample (B, ...).
        pred_original_sample: the current estimate of clean data (diffusion samplers), else None.

    Example::

        def stop_after_five(info: StepInfo):
            print(f"step {info.step + 1}/{info.num_steps}: t = {info.t:.3f}")
            return STOP if info.step == 4 else None              # None: go on

        out = sampler.sample(model, x_T, sampler.grid(schedule, 50), callback=stop_after_five)
    """

    step: int
    num_steps: int
    t: float | None
    sample: Tensor
    pred_original_sample: Tensor | None = None


Callback = Callable[[StepInfo], "Tensor | _Stop | None"]


def apply_callback(callback: Callback | None, info: StepInfo) -> tuple[Tensor, bool]:
    """Run ``callback``; return the (possibly replaced) sample and whether to stop."""
    if callback is None:
        return info.sample, False
    answer = callback(info)
    if answer is None:
        return info.sample, False
    if answer is STOP:
        return info.sample, True
    if isinstance(answer, Tensor):
        if answer.shape != info.sample.shape:
            raise ValueError(
                f"callback returned a tensor of shape {tuple(answer.shape)}; "
                f"expected the sample's shape {tuple(info.sample.shape)}"
            )
        return answer, False
    raise TypeError(f"callback returned {answer!r}; expected None, a tensor, or thermogen.samplers.STOP")
