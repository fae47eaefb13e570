"""Adams-Bashforth samplers on the probability-flow ODE: iPNDM and DEIS (tAB).

In EDM's coordinates ``x~ = x / a`` and ``sigma = s / a`` (a = signal rate,
s = noise rate) the probability-flow ODE is ``dx~/dsigma = eps^(x, sigma)``
(Karras et al. 2022, eq. 4 with the noise prediction as the derivative), so

    x~' = x~ + integral_sigma^sigma' eps^ d sigma.

An Adams-Bashforth method of order k replaces eps^ by the polynomial P through
the last k outputs eps_0 (at sigma_0 = sigma), eps_1, ..., eps_{k-1} and
integrates it exactly: ``x~' = x~ + sum_j w_j eps_j`` with
``w_j = integral_sigma^sigma' L_j d sigma`` (L_j the Lagrange basis polynomials).

* iPNDM (Zhang & Chen 2023, "DEIS" paper's improved PNDM; Zhou et al.'s
  ``ipndm_v``): P is a polynomial in sigma; order up to 4, the first steps
  warm up with the lower orders. On equal steps the weights are the classical
  ``1; (3, -1)/2; (23, -16, 5)/12; (55, -59, 37, -9)/24`` times the step.
* DEIS tAB (Zhang & Chen 2023, arXiv:2204.13902, eq. 15 with the
  "rho" time of section 4): P is a polynomial in ``log sigma`` (diffusers'
  ``DEISMultistepScheduler``, ``algorithm_type="deis"``, whose order-2 and
  order-3 weights are these integrals in closed form); order up to 3.

Both are written back without ``x / a``: with ``e = sum_j w_j eps_j / (sigma' - sigma)``
the step is DDIM's with the noise e, ``x' = a' (x - s e) / a + s' e``. The
order is lowered as in :mod:`thermogen.samplers.multistep` (warm-up, the step
to sigma = 0, ``lower_order_final``). The weights are computed on the host by
24-point Gauss-Legendre quadrature, exact to rounding for these integrands.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.samplers.diffusion_base import DiffusionSampler, DiffusionStepOutput, PredictionType, safe_rate
from thermogen.samplers.multistep import LOWER_ORDER_FINAL_BELOW, grid_position, is_finite, step_order
from thermogen.samplers.spacing import FinalTime, Spacing

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)


def adams_weights(sigmas: list[float], sigma_next: float, log: bool) -> list[float]:
    """``w_j = integral_{sigmas[0]}^{sigma_next} L_j d sigma`` for the Lagrange basis through ``sigmas``.

    ``sigmas`` are the nodes, latest first (sigmas[0] is where the step starts). With
    ``log`` the basis is polynomial in ``log sigma`` (DEIS), else in sigma (iPNDM).
    """
    start = sigmas[0]
    if len(sigmas) == 1:
        return [sigma_next - start]
    if log:
        lo, hi = math.log(start), math.log(sigma_next)
        u = 0.5 * (hi - lo) * _NODES + 0.5 * (hi + lo)
        measure = 0.5 * (hi - lo) * _WEIGHTS * np.exp(u)  # d sigma = e^u du
        nodes = np.log(np.asarray(sigmas))
    else:
        u = 0.5 * (sigma_next - start) * _NODES + 0.5 * (sigma_next + start)
        measure = 0.5 * (sigma_next - start) * _WEIGHTS
        nodes = np.asarray(sigmas)
    weights = []
    for j, node in enumerate(nodes):
        basis = np.ones_like(u)
        for m, other in enumerate(nodes):
            if m != j:
                basis *= (u - other) / (node - other)
        weights.append(float(np.dot(measure, basis)))
    return weights


class AdamsSampler(DiffusionSampler):
    """Base of :class:`IPNDMSampler` and :class:`DEISSampler`: Adams-Bashforth in sigma or log sigma."""

    log_sigma = False
    max_solver_order = 4
    lower_order_final_below: float = LOWER_ORDER_FINAL_BELOW

    def __init__(
        self,
        solver_order: int,
        spacing: Spacing,
        prediction_type: PredictionType,
        lower_order_final: bool,
        final_time: FinalTime,
        steps_offset: int,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, prediction_type)
        if isinstance(solver_order, bool) or solver_order not in range(1, self.max_solver_order + 1):
            raise ConfigError(f"solver_order={solver_order!r}; expected an integer in 1..{self.max_solver_order}")
        if not isinstance(lower_order_final, bool):
            raise ConfigError(f"lower_order_final={lower_order_final!r}; expected true or false")
        self.solver_order = solver_order
        self.lower_order_final = lower_order_final
        self.reset()

    def reset(self) -> None:
        self.history: list[tuple[float, Tensor]] = []  # (sigma, eps^), oldest first

    def step(
        self,
        model_output: Tensor,
        t: Tensor | float,
        t_prev: Tensor | float,
        sample: Tensor,
        generator: torch.Generator | None = None,
    ) -> DiffusionStepOutput:
        """One Adams-Bashforth step from ``t`` to ``t_prev`` (host times); remembers eps^ for the next steps."""
        a, s = self.host_rates(t)
        a_prev, s_prev = self.host_rates(t_prev)
        x0, eps = self.predict_x0_and_eps(model_output, t, sample)
        sigma = s / a if a > 0.0 else math.inf
        sigma_prev = s_prev / a_prev
        self.history = [*self.history, (sigma, eps)][-self.solver_order :]
        _, left = grid_position(self.host_times, float(t_prev))
        num_steps = len(self.host_times) - 1
        order = step_order(
            self.solver_order, len(self.history), left, num_steps, self.lower_order_final, self.lower_order_final_below
        )
        nodes = [sigma_i for sigma_i, _ in self.history[-order:]][::-1]
        if sigma_prev == 0.0 or not is_finite(*nodes) or sigma_prev == sigma:
            order = 1  # the step to sigma' = 0, from zero SNR, or of zero length
        if order == 1:
            return DiffusionStepOutput(
                prev_sample=torch.mul(x0, a_prev).add_(eps, alpha=s_prev), pred_original_sample=x0
            )
        weights = adams_weights(nodes[:order], sigma_prev, self.log_sigma)
        e = torch.zeros_like(eps)
        for weight, (_, eps_j) in zip(weights, self.history[::-1]):
            e.add_(eps_j, alpha=weight / (sigma_prev - sigma))
        x0_e = torch.add(sample, e, alpha=-s).div_(safe_rate(a, sample.dtype))
        return DiffusionStepOutput(prev_sample=x0_e.mul_(a_prev).add_(e, alpha=s_prev), pred_original_sample=x0)


class IPNDMSampler(AdamsSampler):
    """iPNDM: variable-step Adams-Bashforth in sigma on the probability-flow ODE, orders 1-4.

    Args:
        solver_order: the highest order, 1..4 (4 is the published iPNDM).
        spacing: the time grid; ``karras`` (rho = 7) is the published choice.
        prediction_type: "epsilon", "sample" (x_0) or "v".
        lower_order_final: below 15 steps, the last steps count down to 1st order.
        final_time: "zero" or "first_step".
        steps_offset: added to ``leading`` integer timesteps.
    """

    log_sigma = False
    max_solver_order = 4

    def __init__(
        self,
        solver_order: int = 4,
        spacing: Spacing = "karras",
        prediction_type: PredictionType = "epsilon",
        lower_order_final: bool = True,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
    ) -> None:
        super().__init__(solver_order, spacing, prediction_type, lower_order_final, final_time, steps_offset)


class DEISSampler(AdamsSampler):
    """DEIS tAB: Adams-Bashforth with eps^ extrapolated in log sigma (log rho), orders 1-3.

    Args:
        solver_order: the highest order, 1..3.
        spacing: the time grid.
        prediction_type: "epsilon", "sample" (x_0) or "v".
        lower_order_final: below 15 steps, the last steps count down to 1st order (as diffusers).
        final_time: "zero" or "first_step" (diffusers' DEIS ends at the first training step).
        steps_offset: added to ``leading`` integer timesteps.
    """

    log_sigma = True
    max_solver_order = 3

    def __init__(
        self,
        solver_order: int = 3,
        spacing: Spacing = "log_snr",
        prediction_type: PredictionType = "epsilon",
        lower_order_final: bool = True,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
    ) -> None:
        super().__init__(solver_order, spacing, prediction_type, lower_order_final, final_time, steps_offset)
