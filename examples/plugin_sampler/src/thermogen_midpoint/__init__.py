"""A second-order diffusion sampler as a thermogen plugin: the exponential-integrator midpoint rule.

One step from t to t' (signal a, noise s at t; a', s' at t'), with the model evaluated
again at the midpoint t_m = (t + t') / 2 (DPM-Solver-2, Lu et al. 2022, with r = 1/2):

    x_m  = a_m x0(x_t, eps(x_t, t)) + s_m eps(x_t, t)          a DDIM step to t_m
    x_t' = a' x0(x_t, eps_m) + s' eps_m,   eps_m = eps(x_m, t_m)  the DDIM step to t' with the midpoint's eps

where x0(x, eps) = (x - s eps) / a. Two model evaluations per step, second order.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.samplers import DiffusionSampler, DiffusionStepOutput
from thermogen.samplers.diffusion.base import MIN_RATE


class MidpointSampler(DiffusionSampler):
    """Exponential-integrator midpoint sampler (DPM-Solver-2). Deterministic, order 2."""

    conformance: ClassVar[dict[str, Any]] = {"order": 2.0, "steps": 20}

    def __init__(self, spacing: str = "log_snr", prediction_type: str = "epsilon") -> None:
        self.set_grid_options(spacing, "zero", 0, prediction_type)  # type: ignore[arg-type]

    @property
    def model_evaluations_per_step(self) -> int:
        return 2

    def step(self, model_output: Tensor, t: Tensor, t_prev: Tensor, sample: Tensor, generator: Any = None):
        """The DDIM step from t to t_prev with ``model_output`` as the prediction (used twice by model_step)."""
        x0, eps = self.predict_x0_and_eps(model_output, t, sample)
        a, s = self.host_rates(t_prev)
        return DiffusionStepOutput(prev_sample=a * x0 + s * eps, pred_original_sample=x0)

    def model_step(self, model: Any, t: Tensor, t_prev: Tensor, sample: Tensor, generator: Any = None):
        t_mid = torch.tensor(0.5 * (float(t) + float(t_prev)), dtype=torch.float64)
        x_mid = self.step(model(sample, self.noise_level(t, sample)), t, t_mid, sample).prev_sample
        x0_mid, eps_mid = self.predict_x0_and_eps(model(x_mid, self.noise_level(t_mid, x_mid)), t_mid, x_mid)
        a, s = self.host_rates(t)
        x0 = x0_mid if a < MIN_RATE else (sample - s * eps_mid) / a  # zero SNR at t: x_t says nothing about x0
        a_prev, s_prev = self.host_rates(t_prev)
        return DiffusionStepOutput(prev_sample=a_prev * x0 + s_prev * eps_mid, pred_original_sample=x0)
