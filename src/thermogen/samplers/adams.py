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
Gauss-Legendre quadrature (3 points for iPNDM's cubics, 24 for DEIS's ``e^u P(u)``), exact to rounding,
once per grid in :meth:`DiffusionSampler.set_timesteps`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.samplers.diffusion_base import DiffusionSampler, DiffusionStepOutput, PredictionType, safe_rate
from thermogen.samplers.multistep import LOWER_ORDER_FINAL_BELOW, grid_position, is_finite, step_order
from thermogen.samplers.spacing import FinalTime, Spacing

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(24)
_GAUSS_3 = ((-math.sqrt(0.6), 5.0 / 9.0), (0.0, 8.0 / 9.0), (math.sqrt(0.6), 5.0 / 9.0))


def adams_weights(sigmas: list[float], sigma_next: float, log: bool) -> list[float]:
    """``w_j = integral_{sigmas[0]}^{sigma_next} L_j d sigma`` for the Lagrange basis through ``sigmas``.

    ``sigmas`` are the nodes, latest first (sigmas[0] is where the step starts). With
    ``log`` the basis is polynomial in ``log sigma`` (DEIS), else in sigma (iPNDM).
    """
    start = sigmas[0]
    if len(sigmas) == 1:
        return [sigma_next - start]
    if not log:  # polynomials of degree <= 3: 3-point Gauss-Legendre is exact, in Python floats
        half, mid = 0.5 * (sigma_next - start), 0.5 * (sigma_next + start)
        points = [(mid + half * node, half * weight) for node, weight in _GAUSS_3]
        return [
            sum(w * math.prod((u - other) / (node - other) for other in sigmas if other != node) for u, w in points)
            for node in sigmas
        ]
    lo, hi = math.log(start), math.log(sigma_next)
    u = 0.5 * (hi - lo) * _NODES + 0.5 * (hi + lo)
    measure = 0.5 * (hi - lo) * _WEIGHTS * np.exp(u)  # d sigma = e^u du
    nodes = np.log(np.asarray(sigmas))
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
        timesteps: Sequence[float] | None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, prediction_type, timesteps)
        if isinstance(solver_order, bool) or solver_order not in range(1, self.max_solver_order + 1):
            raise ConfigError(f"solver_order={solver_order!r}; expected an integer in 1..{self.max_solver_order}")
        if not isinstance(lower_order_final, bool):
            raise ConfigError(f"lower_order_final={lower_order_final!r}; expected true or false")
        self.solver_order = solver_order
        self.lower_order_final = lower_order_final
        self._plans: dict[tuple[int, int], list[float]] = {}  # (step index, outputs in the history) -> weights
        self.reset()

    def reset(self) -> None:
        self.history: list[tuple[float, Tensor]] = []  # (sigma, eps^), oldest first

    def prepare_grid(self) -> None:
        """Precompute the weights of every step of the grid for a loop run from its first time."""
        self._plans = {}
        sigmas = [self.sigma(t) for t in self.host_times]
        for index in range(len(self.host_times) - 1):
            available = min(index + 1, self.solver_order)
            nodes = sigmas[index - available + 1 : index + 1][::-1]
            self._plans[(index, available)] = self._plan(self.host_times[index + 1], nodes)

    def sigma(self, t: float) -> float:
        """``sigma = s / a`` at host time ``t`` (inf where the signal rate is 0)."""
        a, s = self.host_rates(t)
        return s / a if a > 0.0 else math.inf

    def _plan(self, t_prev: float, nodes: list[float]) -> list[float]:
        """``w_j / (sigma' - sigma)`` for the eps^ at ``nodes`` (latest first); one weight: the 1st-order step."""
        sigma, sigma_prev = nodes[0], self.sigma(t_prev)
        _, left = grid_position(self.grid_index, len(self.host_times), t_prev)
        num_steps = len(self.host_times) - 1
        order = step_order(
            self.solver_order, len(nodes), left, num_steps, self.lower_order_final, self.lower_order_final_below
        )
        if sigma_prev == 0.0 or not is_finite(*nodes[:order]) or sigma_prev == sigma:
            return [1.0]  # the step to sigma' = 0, from zero SNR, or of zero length
        return [w / (sigma_prev - sigma) for w in adams_weights(nodes[:order], sigma_prev, self.log_sigma)]

    def step(
        self,
        model_output: Tensor,
        t: Tensor | float,
        t_prev: Tensor | float,
        sample: Tensor,
        generator: torch.Generator | None = None,
    ) -> DiffusionStepOutput:
        """One Adams-Bashforth step from ``t`` to ``t_prev`` (host times); remembers eps^ for the next steps.

        The weights come from the plan made by :meth:`set_timesteps` (tensor
        algebra only per step); a step off the grid, or of a loop that did not
        start at the grid's first time, computes them on the spot.
        """
        a, s = self.host_rates(t)
        a_prev, s_prev = self.host_rates(t_prev)
        x0, eps = self.predict_x0_and_eps(model_output, t, sample)
        self.history = [*self.history, (s / a if a > 0.0 else math.inf, eps)][-self.solver_order :]
        step_index, _ = grid_position(self.grid_index, len(self.host_times), float(t_prev))
        weights = self._plans.get((step_index, len(self.history))) if step_index >= 0 else None
        if weights is None or self.host_times[step_index] != float(t):
            weights = self._plan(float(t_prev), [sigma_j for sigma_j, _ in self.history[::-1]])
        if len(weights) == 1:
            return DiffusionStepOutput(
                prev_sample=torch.mul(x0, a_prev).add_(eps, alpha=s_prev), pred_original_sample=x0
            )
        # x' = a' (x - s e) / a + s' e with e = sum_j weights_j eps_j
        c_x = a_prev / safe_rate(a, sample.dtype)
        prev_sample = torch.mul(sample, c_x)
        for weight, (_, eps_j) in zip(weights, self.history[::-1]):
            prev_sample.add_(eps_j, alpha=weight * (s_prev - s * c_x))
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=x0)


class IPNDMSampler(AdamsSampler):
    """iPNDM: variable-step Adams-Bashforth in sigma on the probability-flow ODE, orders 1-4.

    Args:
        solver_order: the highest order, 1..4 (4 is the published iPNDM).
        spacing: the time grid; ``karras`` (rho = 7) is the published choice.
        prediction_type: "epsilon", "sample" (x_0) or "v".
        lower_order_final: below 15 steps, the last steps count down to 1st order.
        final_time: "zero" or "first_step".
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 3.0, "steps": 20, "config": {"solver_order": 3}}
    """What the conformance kit holds this sampler to: order 3 at ``solver_order=3`` (order 4 measures
    3.6 at the kit's 64/128 steps, outside its 0.3 tolerance)."""

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
        timesteps: Sequence[float] | None = None,
    ) -> None:
        super().__init__(solver_order, spacing, prediction_type, lower_order_final, final_time, steps_offset, timesteps)


class DEISSampler(AdamsSampler):
    """DEIS tAB: Adams-Bashforth with eps^ extrapolated in log sigma (log rho), orders 1-3.

    Args:
        solver_order: the highest order, 1..3.
        spacing: the time grid.
        prediction_type: "epsilon", "sample" (x_0) or "v".
        lower_order_final: below 15 steps, the last steps count down to 1st order (as diffusers).
        final_time: "zero" or "first_step" (diffusers' DEIS ends at the first training step).
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 3.0, "steps": 20}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

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
        timesteps: Sequence[float] | None = None,
    ) -> None:
        super().__init__(solver_order, spacing, prediction_type, lower_order_final, final_time, steps_offset, timesteps)
