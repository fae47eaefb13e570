"""Learning rate as a pure function of the step: optional linear warm-up, constant, then decay.

``rate(step)`` rises linearly over ``warmup_steps``, stays at ``base`` until
``decay_start``, then falls to ``final_ratio * base`` at ``total_steps``
(cosine or linear). Being a function of the step alone, a resumed run sees
exactly the rates of an uninterrupted one, and a run that was trained with a
constant rate up to step S can be continued with ``decay_start=S``: the result
equals one run launched with that schedule from the start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

LR_DECAYS = ("none", "cosine", "linear")


@dataclass(frozen=True)
class LearningRateSchedule:
    """The rate at each optimizer step (0-based: ``rate(0)`` is used by the first step).

    Example::

        schedule = LearningRateSchedule(base=1e-3, total_steps=10_000, decay="cosine", decay_start=8_000)
        schedule.rate(0), schedule.rate(9_000), schedule.rate(10_000)   # 0.001, 0.0005, 0.0
    """

    base: float
    total_steps: int
    decay: Literal["none", "cosine", "linear"] = "none"
    decay_start: int = 0
    final_ratio: float = 0.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not (isinstance(self.base, (int, float)) and self.base > 0 and math.isfinite(self.base)):
            raise ValueError(f"learning_rate={self.base!r}; expected a positive finite number")
        if self.decay not in LR_DECAYS:
            raise ValueError(f"lr_decay={self.decay!r}; expected one of {', '.join(map(repr, LR_DECAYS))}")
        if not 0 <= self.final_ratio <= 1:
            raise ValueError(f"lr_final_ratio={self.final_ratio!r}; expected a number in [0, 1]")
        if self.warmup_steps < 0:
            raise ValueError(f"lr_warmup_steps={self.warmup_steps!r}; expected an integer >= 0")
        if self.decay != "none" and not 0 <= self.decay_start < self.total_steps:
            raise ValueError(
                f"lr_decay_start={self.decay_start!r}; expected an integer in [0, {self.total_steps}) "
                f"(the decay ends at the last step, {self.total_steps})"
            )

    def rate(self, step: int) -> float:
        """The learning rate for the optimizer step that follows ``step`` completed steps."""
        scale = 1.0
        if step < self.warmup_steps:
            scale = (step + 1) / self.warmup_steps
        if self.decay != "none" and step >= self.decay_start:
            progress = min(1.0, (step - self.decay_start) / (self.total_steps - self.decay_start))
            cosine = self.decay == "cosine"
            falloff = 0.5 * (1.0 + math.cos(math.pi * progress)) if cosine else 1.0 - progress
            scale *= self.final_ratio + (1.0 - self.final_ratio) * falloff
        return self.base * scale
