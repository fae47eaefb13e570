"""DDIM: denoising diffusion implicit models (Song, Meng & Ermon 2021, arXiv:2010.02502).

With ``x_t = a_t x_0 + s_t eps`` (a = signal rate, s = noise rate), one step from
``t`` to ``t' < t`` is eq. 12 of the paper:

    x0^      = (x_t - s_t eps^) / a_t                                   (the model's x_0 estimate)
    x_{t'}   = a_{t'} x0^ + sqrt(s_{t'}^2 - std^2) eps^ + std z,         z ~ N(0, I)
    std      = eta * (s_{t'} / s_t) * sqrt(1 - a_t^2 / a_{t'}^2)         (eq. 16, the paper's sigma_t)

``eta = 0`` is deterministic (it is also the Euler step of the probability-flow
ODE in EDM's sigma = s/a, Karras et al. 2022); ``eta = 1`` is DDPM's ancestral step.
thermogen keeps the word *sigma* for EDM's s/a everywhere; DDIM's sigma_t is ``noise_std``.

The book's sampler (Generative Deep Learning, ch. 8, ``reverse_diffusion``) is
``DDIMSampler(spacing="uniform")`` with the ``offset_cosine`` schedule: it
visits t = 1, 1 - 1/S, ..., 1/S, ends at t = 0 (where the signal rate is 0.95,
not 1) and the book keeps the last x0^, which is
``DiffusionSampleOutput.pred_original_sample``.

How diffusers' ``DDIMScheduler`` maps onto it: :mod:`thermogen.diffusers_interop`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from thermogen.checks import check_number
from thermogen.parameterisation import Denoised
from thermogen.samplers.diffusion.base import DiffusionSampler, DiffusionStepOutput, GeneratorLike
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing
from thermogen.samplers.diffusion.thresholding import ClipsX0


def ddim_noise_std(eta: float, a: float, s: float, a_prev: float, s_prev: float) -> float:
    """eq. 16: ``eta * (s'/s) * sqrt(1 - a^2/a'^2)``, from host floats; 0 for a zero-length step."""
    if eta == 0.0 or s == 0.0 or a_prev == 0.0:
        return 0.0
    return eta * (s_prev / s) * math.sqrt(max(0.0, 1.0 - (a / a_prev) ** 2))


class DDIMSampler(ClipsX0, DiffusionSampler):
    """DDIM (eq. 12 of Song et al. 2021), deterministic for ``eta = 0``.

    Args:
        eta: stochasticity in [0, inf): 0 = DDIM (deterministic), 1 = DDPM's posterior noise.
        spacing: the time grid, see :mod:`thermogen.samplers.diffusion.spacing`.
        clip_sample: clamp x0^ to [-clip_sample, clip_sample] (None: no clipping).
        dynamic_threshold: Imagen's dynamic thresholding quantile (None: off), see
            :mod:`thermogen.samplers.diffusion.thresholding`.
        sample_max_value: cap of the dynamic threshold (None: uncapped).
        final_time: "zero" (t = 0) or "first_step" (t = 1/T, diffusers' ``set_alpha_to_one=False``).
        steps_offset: added to ``leading`` integer timesteps (diffusers' ``steps_offset``).
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = DDIMSampler(spacing="trailing")              # eta = 0: deterministic
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=50))
        images = out.pred_original_sample
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 1.0, "steps": 50}
    """What the conformance kit holds this sampler to (eta = 0: the first-order ODE solver)."""

    def __init__(
        self,
        eta: float = 0.0,
        spacing: Spacing = "leading",
        clip_sample: float | None = None,
        dynamic_threshold: float | None = None,
        sample_max_value: float | None = None,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.set_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        self.eta = check_number("eta", eta, low=0.0)

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: Any = None, generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """One DDIM step (eq. 12) from ``times[i]`` to ``times[i + 1]``; returns x_{t'} and x0^."""
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        x0 = self.limited_x0(denoised.x0)
        std = ddim_noise_std(self.eta, a, s, a_prev, s_prev)
        prev_sample = a_prev * x0 + math.sqrt(max(0.0, s_prev**2 - std**2)) * denoised.eps
        if std > 0.0:
            prev_sample = prev_sample + std * self.randn_like(sample, generator)
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=x0)
