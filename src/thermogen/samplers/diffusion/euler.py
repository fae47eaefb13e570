"""Euler steps of the probability-flow ODE in sigma (Karras et al. 2022, arXiv:2206.00364; k-diffusion).

EDM writes the diffusion in variance-exploding coordinates: ``x~ = x / a`` and
``sigma = s / a`` (a = signal rate, s = noise rate), so ``x~ = x_0 + sigma eps``
and the ODE is ``dx~/dsigma = (x~ - D(x~; sigma)) / sigma = eps^`` (eq. 3 with
D = x0^). One Euler step from sigma to sigma' (k-diffusion's
``sample_euler_ancestral``; ``eta = 0`` is ``sample_euler``):

    d          = (x~ - x0^) / sigma = eps^
    sigma_up   = min(sigma', eta * sqrt(sigma'^2 (sigma^2 - sigma'^2) / sigma^2))
    sigma_down = sqrt(sigma'^2 - sigma_up^2)
    x~'        = x~ + (sigma_down - sigma) d + sigma_up z = x0^ + sigma_down eps^ + sigma_up z

and back in the model's coordinates ``x' = a' x~'``. With ``eta = 0`` this is
exactly DDIM with eta = 0 (Karras et al. 2022, section 4); the right-hand form
avoids ``x / a`` and stays finite at zero terminal SNR (sigma = inf).
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


def ancestral_sigmas(eta: float, a: float, s: float, a_prev: float, s_prev: float) -> tuple[float, float]:
    """``(sigma_down, sigma_up)`` of an ancestral step (k-diffusion ``get_ancestral_step``), from host floats."""
    sigma_prev = s_prev / a_prev
    if eta == 0.0 or sigma_prev == 0.0:
        return sigma_prev, 0.0
    shrink = (s_prev * a / (a_prev * s)) ** 2 if s > 0.0 else 1.0  # (sigma' / sigma)^2, 0 at sigma = inf
    sigma_up = min(sigma_prev, eta * sigma_prev * math.sqrt(max(0.0, 1.0 - shrink)))
    return math.sqrt(max(0.0, sigma_prev**2 - sigma_up**2)), sigma_up


class EulerSampler(DiffusionSampler):
    """Euler (and Euler-ancestral) in sigma space (Karras et al. 2022, Algorithm 1 without correction).

    Args:
        eta: ancestral noise in [0, 1]: 0 = the deterministic ODE, 1 = k-diffusion's Euler ancestral.
        spacing: the time grid; ``karras`` (rho = 7) is EDM's.
        final_time: "zero" or "first_step", see :mod:`thermogen.samplers.diffusion.spacing`.
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        ancestral = EulerSampler(eta=1.0)                       # k-diffusion's Euler ancestral
        out = ancestral.sample(model, x_T, ancestral.grid(schedule, 30), generator=torch.Generator().manual_seed(0))
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 1.0, "steps": 50}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self,
        eta: float = 0.0,
        spacing: Spacing = "karras",
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.eta = check_number("eta", eta, 0.0, 1.0)

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: Any = None, generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """One Euler step from ``times[i]`` to ``times[i + 1]``: ``x' = a' (x0^ + sigma_down eps^ + sigma_up z)``."""
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        sigma_down, sigma_up = ancestral_sigmas(self.eta, a, s, a_prev, s_prev)
        prev_sample = a_prev * (denoised.x0 + sigma_down * denoised.eps)
        if sigma_up > 0.0:
            prev_sample = prev_sample + (a_prev * sigma_up) * self.randn_like(sample, generator)
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=denoised.x0)
