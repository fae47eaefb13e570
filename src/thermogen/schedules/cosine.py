"""The book's continuous schedules: cosine and offset cosine (Generative Deep Learning, ch. 8).

Both are angles: ``signal_rate = cos(angle(t))``, ``noise_rate = sin(angle(t))``,
so signal² + noise² = 1 exactly. (The book's functions return
``(noise_rates, signal_rates)`` in that order; :meth:`NoiseSchedule.rates`
returns ``(signal_rate, noise_rate)``.)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from thermogen.checks import check_number
from thermogen.interfaces import NoiseSchedule


class CosineSchedule(NoiseSchedule):
    """``angle = t * pi / 2``: signal 1 at t = 0, noise 1 at t = 1.

    Example::

        schedule = CosineSchedule()
        schedule.rates(0.5)                                  # (cos(pi/4), sin(pi/4)) = (0.7071, 0.7071)
        x_t = schedule.add_noise(x0, torch.randn_like(x0), t=0.5)
    """

    def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
        angle = t * (math.pi / 2)
        return torch.cos(angle), torch.sin(angle)


class OffsetCosineSchedule(NoiseSchedule):
    """The book's training schedule: the angle runs linearly from acos(max_signal_rate) to acos(min_signal_rate).

    With the defaults the signal rate is 0.95 at t = 0 and 0.02 at t = 1, so
    neither end divides by zero when the sampler converts a noise prediction
    into an image.

    Args:
        max_signal_rate: signal rate at t = 0, in (0, 1].
        min_signal_rate: signal rate at t = 1, in [0, max_signal_rate).

    Example::

        schedule = OffsetCosineSchedule()                    # the book's 0.95 .. 0.02
        schedule.signal_rate(0.0), schedule.signal_rate(1.0)   # 0.95, 0.02 (float64 tensors)
        signal, noise = schedule.rates(t, like=x0)           # t (B,) -> (B, 1, 1, 1) in x0's dtype
    """

    def __init__(self, max_signal_rate: float = 0.95, min_signal_rate: float = 0.02) -> None:
        highest = check_number("max_signal_rate", max_signal_rate, 0, 1, low_inclusive=False)
        lowest = check_number("min_signal_rate", min_signal_rate, 0, highest, high_inclusive=False)
        self.start_angle = math.acos(highest)
        self.end_angle = math.acos(lowest)

    def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
        angle = self.start_angle + t * (self.end_angle - self.start_angle)
        return torch.cos(angle), torch.sin(angle)
