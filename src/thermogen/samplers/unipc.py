"""UniPC: unified predictor-corrector (Zhao, Bai, Rao, Zhou & Lu 2023, arXiv:2302.04867), data prediction.

With ``lambda = log(a / s)`` (half the log-SNR), the x_0 estimates m_0 (the
latest, at lambda_0), m_1, m_2, ... (earlier, at lambda_1, lambda_2, ...) and
``h = lambda' - lambda_0`` for a step to lambda', the predictor UniP-k
(Algorithm 2 of the paper, eq. 8 in data-prediction form) is

    x'  = (s'/s) x - a' (e^{-h} - 1) m_0 - a' B(h) sum_{i=1}^{k-1} rho_i D_i,
    D_i = (m_i - m_0) / r_i,    r_i = (lambda_i - lambda_0) / h,

with ``B(h) = -h`` (``bh1``) or ``e^{-h} - 1`` (``bh2``), and the weights rho
solving ``R rho = b`` (eq. 10): ``R[p][i] = r_i^p`` and
``b_p = (p + 1)! phi_{p+2}(-h) (-h)^{p+1} / B(h)`` (the phi-function recursion
``phi_{p+1}(z) = (phi_p(z) - 1/p!) / z``); for k = 2 the paper's choice rho = 1/2.

The corrector UniC-k (eq. 9) redoes the step just taken, from the same start x
at lambda_0 to lambda, with the model output m at the new point, which the
next step needs anyway (no extra evaluation):

    x_c = (s/s_0) x - a (e^{-h} - 1) m_0 - a B(h) (sum_{i=1}^{k-1} rho_i D_i + rho_k (m - m_0)),

where ``r_k = 1`` joins the linear system (for k = 1, rho_1 = 1/2). It raises
the order of accuracy by one. The next predictor starts from x_c. No corrector
follows the last step (there is no model output there).

This is diffusers' ``UniPCMultistepScheduler`` with ``predict_x0=True``,
``solver_type`` = ``variant``, ``lower_order_final`` (diffusers lowers the order
of the last steps at any number of steps) and ``disable_corrector`` (the
indices of steps whose result is not corrected). One difference: the step to
sigma = 0 is first order here (the result is m_0); diffusers' ``bh1`` returns
NaN there (B(h) = -h is infinite).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.samplers.diffusion_base import DiffusionSampler, DiffusionStepOutput, PredictionType
from thermogen.samplers.dpm_solver import half_log_snr
from thermogen.samplers.multistep import grid_position, is_finite, step_order
from thermogen.samplers.spacing import FinalTime, Spacing
from thermogen.samplers.thresholding import check_x0_options, process_x0

Variant = Literal["bh1", "bh2"]


def unipc_weights(h: float, ratios: list[float], variant: str, corrector: bool) -> tuple[float, float, list[float]]:
    """``(e^{-h} - 1, B(h), rho)`` for a step of log-SNR length ``h`` > 0 (host floats).

    ``ratios`` are r_1 .. r_{k-1} of the earlier outputs; the corrector adds r_k = 1.
    """
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else h_phi_1
    size = len(ratios) + 1
    rks = np.array([*ratios, 1.0])
    b = np.empty(size)
    h_phi_k, factorial = h_phi_1 / hh - 1.0, 1.0
    for p in range(size):
        b[p] = h_phi_k * factorial / b_h
        factorial *= p + 2
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    if corrector:
        rho = [0.5] if size == 1 else np.linalg.solve(np.vander(rks, increasing=True).T, b).tolist()
    elif size == 1:
        rho = []
    elif size == 2:
        rho = [0.5]
    else:
        rho = np.linalg.solve(np.vander(rks[:-1], increasing=True).T, b[:-1]).tolist()
    return h_phi_1, b_h, rho


def unipc_update(
    x: Tensor,
    s_ratio: float,
    a_next: float,
    h: float,
    m0: Tensor,
    earlier: list[tuple[float, Tensor]],
    lam0: float,
    variant: str,
    m_new: Tensor | None = None,
) -> Tensor:
    """UniP (``m_new`` None) or UniC (``m_new`` = the x_0 estimate at the step's end) from x at lambda_0.

    ``earlier`` holds (lambda_i, m_i), latest first; ``s_ratio = s'/s_0``, ``a_next = a'``.
    """
    ratios = [(lam_i - lam0) / h for lam_i, _ in earlier]
    h_phi_1, b_h, rho = unipc_weights(h, ratios, variant, corrector=m_new is not None)
    out = torch.mul(x, s_ratio).add_(m0, alpha=-a_next * h_phi_1)
    for weight, ratio, (_, m_i) in zip(rho, ratios, earlier):
        out.add_(torch.sub(m_i, m0), alpha=-a_next * b_h * weight / ratio)
    if m_new is not None:
        out.add_(torch.sub(m_new, m0), alpha=-a_next * b_h * rho[-1])
    return out


class UniPCSampler(DiffusionSampler):
    """UniPC (Zhao et al. 2023): multistep predictor UniP-k with the corrector UniC, data prediction.

    Args:
        solver_order: k in 1..3.
        variant: ``"bh1"`` (B(h) = -h, the paper's choice for unconditional sampling at few steps)
            or ``"bh2"`` (B(h) = e^{-h} - 1).
        spacing: the time grid, see :mod:`thermogen.samplers.spacing`.
        prediction_type: "epsilon", "sample" (x_0) or "v".
        lower_order_final: lower the order of the last steps (the last step is 1st order).
        disable_corrector: indices of steps whose result is not corrected (diffusers' option).
        clip_sample, dynamic_threshold, sample_max_value: see :mod:`thermogen.samplers.thresholding`.
        final_time: "zero" or "first_step".
        steps_offset: added to ``leading`` integer timesteps.
    """

    def __init__(
        self,
        solver_order: int = 3,
        variant: Variant = "bh2",
        spacing: Spacing = "log_snr",
        prediction_type: PredictionType = "epsilon",
        lower_order_final: bool = True,
        disable_corrector: tuple[int, ...] = (),
        clip_sample: float | None = None,
        dynamic_threshold: float | None = None,
        sample_max_value: float | None = None,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, prediction_type)
        check_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        if isinstance(solver_order, bool) or solver_order not in (1, 2, 3):
            raise ConfigError(f"solver_order={solver_order!r}; expected 1, 2 or 3")
        if variant not in ("bh1", "bh2"):
            raise ConfigError(f"variant={variant!r}; expected 'bh1' or 'bh2'")
        if not isinstance(lower_order_final, bool):
            raise ConfigError(f"lower_order_final={lower_order_final!r}; expected true or false")
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in disable_corrector):
            raise ConfigError(f"disable_corrector={disable_corrector!r}; expected step indices (integers >= 0)")
        self.solver_order = solver_order
        self.variant = variant
        self.lower_order_final = lower_order_final
        self.disable_corrector = tuple(disable_corrector)
        self.clip_sample = clip_sample
        self.dynamic_threshold = dynamic_threshold
        self.sample_max_value = sample_max_value
        self.reset()

    def reset(self) -> None:
        self.history: list[tuple[float, Tensor]] = []  # (lambda, x0^), oldest first
        self.last_step: tuple[Tensor, float, int] | None = None  # (x before the last step, its s, its order)

    def step(
        self,
        model_output: Tensor,
        t: Tensor | float,
        t_prev: Tensor | float,
        sample: Tensor,
        generator: torch.Generator | None = None,
    ) -> DiffusionStepOutput:
        """Correct ``sample`` (the last prediction) with the new output, then predict at ``t_prev`` (host times)."""
        a, s = self.host_rates(t)
        a_prev, s_prev = self.host_rates(t_prev)
        x0, _ = self.predict_x0_and_eps(model_output, t, sample)
        m_new = process_x0(x0, self.clip_sample, self.dynamic_threshold, self.sample_max_value)
        lam = half_log_snr(a, s)
        if self.last_step is not None:
            last_sample, s_last, order = self.last_step
            lam0, m0 = self.history[-1]
            earlier = self.history[-order:-1][::-1]
            sample = unipc_update(last_sample, s / s_last, a, lam - lam0, m0, earlier, lam0, self.variant, m_new)
        self.history = [*self.history, (lam, m_new)][-self.solver_order :]
        step_index, left = grid_position(self.host_times, float(t_prev))
        num_steps = len(self.host_times) - 1
        order = step_order(self.solver_order, len(self.history), left, num_steps, self.lower_order_final, math.inf)
        lam_prev = half_log_snr(a_prev, s_prev)
        if s_prev == 0.0 or not is_finite(lam, *(lam_i for lam_i, _ in self.history[-order:])):
            order = 1  # the step to sigma' = 0, or across a zero-SNR start
        corrected_next = left > 1 and step_index not in self.disable_corrector and is_finite(lam, lam_prev)
        if lam_prev == lam:  # zero-length step (final_time="first_step" after linspace/leading)
            prev_sample = sample
        elif s_prev == 0.0:
            prev_sample = m_new
        else:
            earlier = self.history[-order:-1][::-1]
            prev_sample = unipc_update(sample, s_prev / s, a_prev, lam_prev - lam, m_new, earlier, lam, self.variant)
        self.last_step = (sample, s, order) if corrected_next else None
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=m_new)
