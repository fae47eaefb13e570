"""Improved DDPM's cosine schedule (Nichol & Dhariwal 2021, arXiv:2102.09672, eq. 17).

    f(t) = cos(((t + s) / (1 + s)) * pi / 2) ** 2,     s = 0.008
    alpha_bar(t) = f(t) / f(0)
    beta_i = min(1 - f((i + 1) / T) / f(i / T), max_beta),   i = 0..T-1

The clip at ``max_beta = 0.999`` prevents the singularity at t = 1 (f(1) = 0);
``s`` keeps beta_0 small (sqrt(beta_0) just below the pixel bin size 1/127.5).
These are diffusers' ``beta_schedule="squaredcos_cap_v2"`` betas (diffusers
computes them in Python floats and stores float32). Because of the clip, the
discrete alpha_bar is a product of betas, not exactly f(t) / f(0), near t = 1.

Unlike the book's ``cosine`` (signal_rate = cos(t pi/2), see
:mod:`thermogen.schedules.cosine`) this is a discrete schedule: it has an
offset, a clip, and a non-zero terminal SNR (alpha_bar(1) ≈ 2.4e-9) unless
``rescale_betas_zero_snr`` is set.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from thermogen.checks import check_number
from thermogen.schedules.discrete import DiscreteSchedule


class ImprovedCosineSchedule(DiscreteSchedule):
    """Nichol & Dhariwal's cosine betas on ``num_train_timesteps`` steps.

    Args:
        num_train_timesteps: T (>= 2).
        s: time offset, >= 0 (0.008 in the paper).
        max_beta: upper clip of every beta, in (0, 1) (0.999 in the paper).
        rescale_betas_zero_snr: rescale to zero terminal SNR (Lin et al. 2023).

    Example::

        schedule = ImprovedCosineSchedule()                  # diffusers' "squaredcos_cap_v2"
        schedule.betas.max(), schedule.alpha_bar(1.0)        # 0.999 (the clip), about 2.4e-9
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        s: float = 0.008,
        max_beta: float = 0.999,
        rescale_betas_zero_snr: bool = False,
    ) -> None:
        self.s = check_number("s", s, low=0)
        self.max_beta = check_number("max_beta", max_beta, 0, 1, low_inclusive=False, high_inclusive=False)
        super().__init__(num_train_timesteps, rescale_betas_zero_snr)

    def f(self, t: Tensor) -> Tensor:
        """``cos(((t + s) / (1 + s)) * pi / 2) ** 2`` for float64 ``t`` in [0, 1]."""
        return torch.cos((t + self.s) / (1.0 + self.s) * (math.pi / 2)) ** 2

    def make_betas(self) -> Tensor:
        grid = torch.arange(self.num_train_timesteps + 1, dtype=torch.float64) / self.num_train_timesteps
        f = self.f(grid)
        return (1.0 - f[1:] / f[:-1]).clamp(max=self.max_beta)
