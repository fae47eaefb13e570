"""DDPM ancestral sampling (Ho, Jain & Abbeel 2020, arXiv:2006.11239, eqs. 6-7), between any two times.

From ``t`` to any earlier ``t'`` the forward process has
``alpha_{t|t'} = a_t / a_{t'}`` and ``beta_{t|t'} = 1 - alpha_{t|t'}^2``
(a = signal rate, s = noise rate; one training step gives DDPM's ``alpha_t`` and
``beta_t``). The reverse step samples the posterior q(x_{t'} | x_t, x_0 = x0^):

    mean     = (a_{t'} beta_{t|t'} / s_t^2) x0^ + (alpha_{t|t'} s_{t'}^2 / s_t^2) x_t
    variance = (s_{t'}^2 / s_t^2) beta_{t|t'}      "fixed_small" (the posterior variance, beta~)
             = beta_{t|t'}                          "fixed_large" (DDPM's sigma_t^2 = beta_t)
    x_{t'}   = mean + sqrt(variance) z,   z ~ N(0, I)

With "fixed_small" this is DDIM with eta = 1. "fixed_large" adds no noise on
the step to s_{t'} = 0 (clean data), where DDPM sets z = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from torch import Tensor

from thermogen.checks import check_choice
from thermogen.parameterisation import MIN_RATE, Denoised
from thermogen.samplers.diffusion.base import DiffusionSampler, DiffusionStepOutput, GeneratorLike
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing
from thermogen.samplers.diffusion.thresholding import ClipsX0

VarianceType = Literal["fixed_small", "fixed_large"]


class DDPMSampler(ClipsX0, DiffusionSampler):
    """Ancestral sampling from the DDPM posterior; works for any schedule and any pair t > t'.

    Args:
        spacing: the time grid (diffusers' DDPM default is ``leading``; with
            ``num_steps = T`` every spacing visits every training step).
        variance_type: "fixed_small" (posterior variance) or "fixed_large" (beta_{t|t'}).
        clip_sample: clamp x0^ to [-clip_sample, clip_sample] (None: no clipping).
        dynamic_threshold: Imagen's dynamic thresholding quantile (None: off).
        sample_max_value: cap of the dynamic threshold (None: uncapped).
        final_time: "zero" or "first_step" (t = 1/T), see :mod:`thermogen.samplers.diffusion.spacing`.
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = DDPMSampler(variance_type="fixed_small")
        grid = sampler.grid(schedule, num_steps=1000)           # every training step of a T = 1000 schedule
        out = sampler.sample(model, x_T, grid, generator=torch.Generator().manual_seed(0))
    """

    conformance: ClassVar[dict[str, Any]] = {"steps": 100}  # stochastic: no ODE order
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self,
        spacing: Spacing = "leading",
        variance_type: VarianceType = "fixed_small",
        clip_sample: float | None = None,
        dynamic_threshold: float | None = None,
        sample_max_value: float | None = None,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.set_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        self.variance_type = check_choice("variance_type", variance_type, ("fixed_small", "fixed_large"))

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: Any = None, generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """Sample x_{t'} ~ q(x_{t'} | x_t, x0^) from ``times[i]`` to ``times[i + 1]``."""
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        x0 = self.limited_x0(denoised.x0)
        alpha = a / max(a_prev, MIN_RATE)  # alpha_{t|t'}; a_{t'} > 0 because t' < t <= 1
        beta = max(0.0, 1.0 - alpha**2)  # beta_{t|t'}
        s2 = max(s, MIN_RATE) ** 2  # s_t > 0 because t > t' >= 0
        variance = s_prev**2 / s2 * beta  # fixed_small: the posterior variance
        if self.variance_type == "fixed_large":  # no noise on the step to clean data (DDPM's z = 0 at the end)
            variance = beta if s_prev > 0.0 else 0.0
        mean = (a_prev * beta / s2) * x0 + (alpha * s_prev**2 / s2) * sample
        if variance > 0.0:
            mean = mean + math.sqrt(variance) * self.randn_like(sample, generator)
        return DiffusionStepOutput(prev_sample=mean, pred_original_sample=x0)
