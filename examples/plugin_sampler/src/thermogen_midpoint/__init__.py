"""A second-order diffusion sampler as a thermogen plugin: the exponential-integrator midpoint rule.

One step from t to t' (signal a, noise s at t; a', s' at t'), with the denoiser evaluated
again at the midpoint t_m = (t + t') / 2 (DPM-Solver-2, Lu et al. 2022, with r = 1/2):

    x_m  = a_m x0^ + s_m eps^                  a DDIM step to t_m with (x0^, eps^) = D(x_t, t)
    x_t' = a' (x_t - s eps_m) / a + s' eps_m   the DDIM step to t' with the midpoint's eps_m = D(x_m, t_m).eps

Two denoiser calls per step, second order. The whole sampler is one method: the library
hands it the denoiser (which knows the model's parameterisation) and the time grid.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from thermogen.parameterisation import MIN_RATE
from thermogen.samplers import Denoiser, DiffusionSampler, DiffusionStepOutput, TimeGrid


class MidpointSampler(DiffusionSampler):
    """Exponential-integrator midpoint sampler (DPM-Solver-2). Deterministic, order 2.

    Example::

        sampler = MidpointSampler()
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=10))   # 20 model calls
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 2.0, "steps": 20}
    evaluations_per_step = 2

    def __init__(self, spacing: str = "log_snr") -> None:
        self.set_grid_options(spacing)  # type: ignore[arg-type]

    def solve_step(
        self, denoiser: Denoiser, grid: TimeGrid, i: int, sample: Tensor, state: Any = None, generator: Any = None
    ) -> DiffusionStepOutput:
        """Step ``i``: a DDIM half step to the midpoint, then the full step with the midpoint's noise estimate."""
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        a_mid, s_mid = grid.rates_at(0.5 * (grid.times[i] + grid.times[i + 1]))
        first = denoiser(sample, a, s)
        x_mid = a_mid * first.x0 + s_mid * first.eps
        mid = denoiser(x_mid, a_mid, s_mid)
        x0 = mid.x0 if a < MIN_RATE else (sample - s * mid.eps) / a  # zero SNR at t: x_t says nothing about x0
        return DiffusionStepOutput(prev_sample=a_prev * x0 + s_prev * mid.eps, pred_original_sample=x0)
