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
order is lowered as in :mod:`thermogen.samplers.diffusion.multistep` (warm-up, the step
to sigma = 0, ``lower_order_final``). The weights are computed on the host by
Gauss-Legendre quadrature (3 points for iPNDM's cubics, 24 for DEIS's ``e^u P(u)``), exact to rounding,
once per grid in :meth:`DiffusionSampler.set_timesteps`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np
from torch import Tensor

from thermogen.checks import check_bool, check_int
from thermogen.parameterisation import Denoised, safe_rate
from thermogen.samplers.diffusion.base import DiffusionSampler, DiffusionStepOutput, GeneratorLike
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.multistep import LOWER_ORDER_FINAL_BELOW, is_finite, linear_combination, step_order
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing

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


def sigma_of(a: float, s: float) -> float:
    """EDM's ``sigma = s / a`` from host rates (inf where the signal rate is 0)."""
    return s / a if a > 0.0 else math.inf


class AdamsState(NamedTuple):
    """One Adams loop's state: the planned weights of every step and the last eps^ estimates (oldest first).

    Example::

        state = sampler.initial_state(grid)     # plans for every step, no estimates yet
        state.plans[0]                          # the weights of step 0: [1.0] (first order)
    """

    plans: tuple[list[float], ...]
    history: tuple[Tensor, ...] = ()


class AdamsSampler(DiffusionSampler):
    """Base of :class:`IPNDMSampler` and :class:`DEISSampler`: Adams-Bashforth in sigma or log sigma.

    Example::

        class Adams2(AdamsSampler):          # Adams-Bashforth in sigma, at most 2nd order
            log_sigma, max_solver_order = False, 2

            def __init__(self, solver_order: int = 2, spacing: str = "karras", lower_order_final: bool = True,
                         final_time: str = "zero", steps_offset: int = 0, timesteps=None) -> None:
                super().__init__(solver_order, spacing, lower_order_final, final_time, steps_offset, timesteps)
    """

    log_sigma = False
    max_solver_order = 4
    lower_order_final_below: float = LOWER_ORDER_FINAL_BELOW

    def __init__(
        self,
        solver_order: int,
        spacing: Spacing,
        lower_order_final: bool,
        final_time: FinalTime,
        steps_offset: int,
        timesteps: Sequence[float] | None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.solver_order = check_int("solver_order", solver_order, 1, self.max_solver_order)
        self.lower_order_final = check_bool("lower_order_final", lower_order_final)

    def initial_state(self, grid: TimeGrid) -> AdamsState:
        """Plan the weights of every step of ``grid`` (host floats); no estimates yet."""
        sigmas = [sigma_of(a, s) for a, s in zip(grid.signal_rates, grid.noise_rates)]
        plans = []
        for i in range(grid.num_steps):
            available = min(i + 1, self.solver_order)
            plans.append(self._plan(grid, i, sigmas[i - available + 1 : i + 1][::-1], sigmas[i + 1]))
        return AdamsState(tuple(plans))

    def _plan(self, grid: TimeGrid, i: int, nodes: list[float], sigma_prev: float) -> list[float]:
        """``w_j / (sigma' - sigma)`` for the eps^ at ``nodes`` (latest first); one weight: the 1st-order step."""
        sigma = nodes[0]
        order = step_order(
            self.solver_order,
            len(nodes),
            grid.steps_left(i),
            grid.num_steps,
            self.lower_order_final,
            self.lower_order_final_below,
        )
        if sigma_prev == 0.0 or not is_finite(*nodes[:order]) or sigma_prev == sigma:
            return [1.0]  # the step to sigma' = 0, from zero SNR, or of zero length
        return [w / (sigma_prev - sigma) for w in adams_weights(nodes[:order], sigma_prev, self.log_sigma)]

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: AdamsState | None = None, generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """One Adams-Bashforth step from ``times[i]`` to ``times[i + 1]``; the new state remembers eps^.

        ``x' = a' (x - s e) / a + s' e`` with ``e = sum_j w_j eps_j``, the weights planned by :meth:`initial_state`.
        """
        state = self.initial_state(grid) if state is None else state
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        history = (*state.history, denoised.eps)[-self.solver_order :]
        weights = state.plans[i]
        if len(history) != min(i + 1, self.solver_order):  # a loop that did not start at step 0 of the grid
            nodes = [sigma_of(*grid.rates(j)) for j in range(i, i - len(history), -1)]
            weights = self._plan(grid, i, nodes, sigma_of(*grid.rates(i + 1)))
        next_state = AdamsState(state.plans, history)
        if len(weights) == 1:
            prev_sample = a_prev * denoised.x0 + s_prev * denoised.eps
            return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=denoised.x0, state=next_state)
        c_x = a_prev / safe_rate(a, sample.dtype)
        c_e = s_prev - c_x * s  # x' = c_x x + c_e e, e = sum_j w_j eps_j: one pass over x and the eps^
        prev_sample = linear_combination([sample, *history[::-1]], [c_x, *(c_e * w for w in weights)])
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=denoised.x0, state=next_state)


class IPNDMSampler(AdamsSampler):
    """iPNDM: variable-step Adams-Bashforth in sigma on the probability-flow ODE, orders 1-4.

    Args:
        solver_order: the highest order, 1..4 (4 is the published iPNDM).
        spacing: the time grid; ``karras`` (rho = 7) is the published choice.
        lower_order_final: below 15 steps, the last steps count down to 1st order.
        final_time: "zero" or "first_step".
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = IPNDMSampler()                                # order 4 on a Karras grid
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=10))
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
        lower_order_final: bool = True,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        super().__init__(solver_order, spacing, lower_order_final, final_time, steps_offset, timesteps)


class DEISSampler(AdamsSampler):
    """DEIS tAB: Adams-Bashforth with eps^ extrapolated in log sigma (log rho), orders 1-3.

    Args:
        solver_order: the highest order, 1..3.
        spacing: the time grid.
        lower_order_final: below 15 steps, the last steps count down to 1st order (as diffusers).
        final_time: "zero" or "first_step" (diffusers' DEIS ends at the first training step).
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = DEISSampler(solver_order=3)
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=10))
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 3.0, "steps": 20}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    log_sigma = True
    max_solver_order = 3

    def __init__(
        self,
        solver_order: int = 3,
        spacing: Spacing = "log_snr",
        lower_order_final: bool = True,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        super().__init__(solver_order, spacing, lower_order_final, final_time, steps_offset, timesteps)
