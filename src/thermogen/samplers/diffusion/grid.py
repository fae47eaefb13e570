"""The times one sampling loop visits, with the schedule's rates there, held on the host.

A :class:`TimeGrid` is a value: built once per loop by
:meth:`DiffusionSampler.grid` (or :meth:`TimeGrid.from_times` for any
times), read by every step, never changed. Step ``i`` goes from ``times[i]``
to ``times[i + 1]``; the rates are Python floats, so a step reads its
coefficients without touching the device (no host-device syncs in the loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from thermogen.interfaces import NoiseSchedule


@dataclass(frozen=True)
class TimeGrid:
    """Decreasing diffusion times and the signal / noise rates at each of them (host floats).

    Attributes:
        times: ``num_steps + 1`` times in [0, 1], from the first model evaluation to the final time.
        signal_rates: ``a_i = signal_rate(times[i])``.
        noise_rates: ``s_i = noise_rate(times[i])``.
        schedule: the schedule the rates come from (for :meth:`rates_at` between grid times).

    Example::

        grid = TimeGrid.from_times(schedule, [1.0, 0.5, 0.0])   # two steps
        a, s = grid.rates(0)                                      # the rates at t = 1
    """

    times: tuple[float, ...]
    signal_rates: tuple[float, ...]
    noise_rates: tuple[float, ...]
    schedule: NoiseSchedule = field(repr=False, compare=False)

    @classmethod
    def from_times(cls, schedule: NoiseSchedule, times: Tensor | Sequence[float]) -> TimeGrid:
        """The grid of ``times`` (at least two, in [0, 1], non-increasing) on ``schedule`` (rates in float64)."""
        times64 = torch.as_tensor(times, dtype=torch.float64, device="cpu").reshape(-1)
        if times64.numel() < 2:
            raise ValueError(f"a time grid needs at least 2 times (one step); got {times64.tolist()}")
        if bool((times64[1:] > times64[:-1]).any()):
            raise ValueError(
                f"grid times {times64.tolist()} are not non-increasing (a sampler runs from noise to data)"
            )
        signal, noise = schedule.rates64(times64)
        return cls(tuple(times64.tolist()), tuple(signal.tolist()), tuple(noise.tolist()), schedule)

    @property
    def num_steps(self) -> int:
        """Number of steps (one less than the number of times)."""
        return len(self.times) - 1

    def rates(self, i: int) -> tuple[float, float]:
        """``(signal_rate, noise_rate)`` at ``times[i]``."""
        return self.signal_rates[i], self.noise_rates[i]

    def rates_at(self, t: float) -> tuple[float, float]:
        """``(signal_rate, noise_rate)`` at any time ``t`` in [0, 1] (e.g. a midpoint), in float64 on the host."""
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"diffusion time t={t!r} is outside [0, 1]")
        signal, noise = self.schedule.rates64(torch.tensor([float(t)], dtype=torch.float64))
        return float(signal), float(noise)

    def steps_left(self, i: int) -> int:
        """Steps from step ``i`` to the end of the loop, step ``i`` included (1 on the last)."""
        return self.num_steps - i

    def as_tensor(self, device: torch.device | str | None = None) -> Tensor:
        """The times as a float64 tensor (num_steps + 1,)."""
        return torch.tensor(self.times, dtype=torch.float64, device=device)
