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

The step to sigma = 0 is first order (the result is m_0; B(h) = -h of ``bh1`` is
infinite there). tests/samplers/diffusion/test_few_step_reference.py checks it step for step against
diffusers' ``UniPCMultistepScheduler`` (``predict_x0=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple

from torch import Tensor

from thermogen.checks import check_bool, check_choice, check_int
from thermogen.parameterisation import Denoised
from thermogen.samplers.diffusion.base import DiffusionSampler, DiffusionStepOutput, GeneratorLike
from thermogen.samplers.diffusion.dpm_solver import half_log_snr
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.multistep import is_finite, linear_combination, step_order
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing
from thermogen.samplers.diffusion.thresholding import ClipsX0

Variant = Literal["bh1", "bh2"]


def unipc_weights(h: float, ratios: list[float], variant: str, corrector: bool) -> tuple[float, float, list[float]]:
    """``(e^{-h} - 1, B(h), rho)`` for a step of log-SNR length ``h`` > 0 (host floats).

    ``ratios`` are r_1 .. r_{k-1} of the earlier outputs; the corrector adds r_k = 1.
    """
    hh = -h
    h_phi_1 = math.expm1(hh)
    b_h = hh if variant == "bh1" else h_phi_1
    rks = [*ratios, 1.0] if corrector else list(ratios)
    if not rks:
        return h_phi_1, b_h, []
    if len(rks) == 1 and not corrector:
        return h_phi_1, b_h, [0.5]  # k = 2: the paper's rho_1 = 1/2
    b = []
    h_phi_k, factorial = h_phi_1 / hh - 1.0, 1.0
    for p in range(len(rks)):
        b.append(h_phi_k * factorial / b_h)
        factorial *= p + 2
        h_phi_k = h_phi_k / hh - 1.0 / factorial
    if len(rks) == 1:
        return h_phi_1, b_h, [0.5]  # UniC-1
    return h_phi_1, b_h, solve_vandermonde(rks, b)


def solve_vandermonde(nodes: list[float], b: list[float]) -> list[float]:
    """rho with ``sum_i rho_i nodes_i^p = b_p`` for p = 0 .. len - 1 (eq. 10's ``R rho = b``), on the host.

    Sizes 2 and 3 (UniPC's orders); Cramer's rule in Python floats, no array library per step.
    """
    if len(nodes) == 2:
        r1, r2 = nodes
        det = r2 - r1
        return [(b[0] * r2 - b[1]) / det, (b[1] - b[0] * r1) / det]
    rows = [[1.0] * len(nodes), list(nodes), [r * r for r in nodes]]
    if len(nodes) != 3:
        raise ValueError(f"{len(nodes)} nodes; UniPC solves systems of 2 or 3")

    def det3(m: list[list[float]]) -> float:
        return (
            m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        )

    det = det3(rows)
    return [det3([[*row[:j], b[p], *row[j + 1 :]] for p, row in enumerate(rows)]) / det for j in range(3)]


def unipc_coefficients(
    s_ratio: float, a_next: float, h: float, ratios: list[float], variant: str, corrector: bool
) -> tuple[float, list[float], float]:
    """UniP (eq. 8) or UniC (eq. 9) expanded into ``c_x x + sum_i c_i m_i + c_new m_new`` (host floats).

    From x at lambda_0 over ``h``, with ``s_ratio = s'/s_0``, ``a_next = a'`` and
    ``ratios`` r_1 .. r_{k-1} of the earlier estimates m_1 ..; ``c_m`` holds the
    weights of m_0, m_1, .. (latest first). ``c_new`` (of the x_0 estimate at the
    step's end) is 0 for the predictor. With ``D_i = (m_i - m_0) / r_i`` the
    weight of m_i is ``-a' B(h) rho_i / r_i`` and m_0 takes ``-a'(e^{-h} - 1)``
    minus all the others.
    """
    h_phi_1, b_h, rho = unipc_weights(h, ratios, variant, corrector)
    c_earlier = [-a_next * b_h * weight / ratio for weight, ratio in zip(rho, ratios)]
    c_new = -a_next * b_h * rho[-1] if corrector else 0.0
    c_m0 = -a_next * h_phi_1 - sum(c_earlier) - c_new
    return s_ratio, [c_m0, *c_earlier], c_new


class Correction(NamedTuple):
    """UniC (eq. 9) minus UniP (eq. 8) of one step: ``x_c = x' + c_new m_new + sum_i c_m[i] m_i``.

    Both start from the same x with the same ``c_x``, so the corrected result is the predicted one plus
    a combination of x_0 estimates: ``m_new`` (at the step's end) and the step's m_0, m_1, .. (latest first).

    Example::

        plan = sampler.initial_state(grid).plans[1]
        plan.correct.c_new, plan.correct.c_m     # the weight of the next x0^ and of this step's x0^ estimates
    """

    c_new: float
    c_m: list[float]


def correction_of(predictor: list[float], corrector: tuple[float, list[float], float]) -> Correction:
    """The :class:`Correction` from the predictor's weights of m_0, m_1, .. and the corrector's expansion."""
    _, c_m, c_new = corrector
    return Correction(c_new, [c - p for c, p in zip(c_m, predictor)])


def fold_correction(c_x: float, c_m: list[float], correction: Correction) -> list[float]:
    """Weights over ``(x', m_new, m_1, m_2, ..)`` of ``c_x x_c + sum_i c_m[i] (m_new, m_1, ..)_i``.

    ``x_c = x' + correction`` (the last step's result corrected with ``m_new``, whose m_0 is the
    ``m_1`` here): the corrector and the next predictor in one pass over the tensors.
    """
    weights = [c_x, *c_m, *[0.0] * (1 + len(correction.c_m) - len(c_m))]
    weights[1] += c_x * correction.c_new
    for j, c in enumerate(correction.c_m):
        weights[2 + j] += c_x * c
    return weights


class _Plan(NamedTuple):
    """Host coefficients of one step: the predictor and, if the result is to be corrected, the correction."""

    kind: Literal["predict", "x0", "stay"]  # UniP; the step to sigma' = 0 (result m_0); a zero-length step
    lam: float  # lambda at the step's start, where its new x_0 estimate is
    c_x: float
    c_m: list[float]
    correct: Correction | None


class UniPCState(NamedTuple):
    """One UniPC loop's state: the planned steps, the latest estimates and the correction still to apply.

    Example::

        state = sampler.initial_state(grid)     # every step planned, no estimates yet
        out = sampler.step(model.denoise(x, *grid.rates(0)), grid, 0, x, state)
        out.state.history                       # ((lambda_0, x0^_0),)
    """

    plans: tuple[_Plan, ...]
    """Host coefficients of every step of the grid, planned once by :meth:`UniPCSampler.initial_state`."""
    history: tuple[tuple[float, Tensor], ...] = ()
    """``(lambda, x0^)`` of the last ``solver_order + 1`` steps, oldest first (the corrector of the last step
    used one more than the next predictor does)."""
    pending: Correction | None = None
    """The correction of the last step's result, applied by the next step with its new estimate, or None."""


class UniPCSampler(ClipsX0, DiffusionSampler):
    """UniPC (Zhao et al. 2023): multistep predictor UniP-k with the corrector UniC, data prediction.

    Args:
        solver_order: k in 1..3.
        variant: ``"bh1"`` (B(h) = -h, the paper's choice for unconditional sampling at few steps)
            or ``"bh2"`` (B(h) = e^{-h} - 1).
        spacing: the time grid, see :mod:`thermogen.samplers.diffusion.spacing`.
        lower_order_final: lower the order of the last steps (the last step is 1st order).
        disable_corrector: indices of steps whose result is not corrected (diffusers' option).
        clip_sample: clamp each x0^ to [-clip_sample, clip_sample] (None: off).
        dynamic_threshold: Imagen's dynamic thresholding quantile for each x0^ (None: off).
        sample_max_value: cap of the dynamic threshold (None: uncapped).
        final_time: "zero" or "first_step".
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = UniPCSampler(solver_order=3, variant="bh2")
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=6))   # 6 model evaluations
    """

    conformance: ClassVar[dict[str, Any]] = {"order": 4.0, "steps": 20, "config": {"lower_order_final": False}}
    """What the conformance kit holds this sampler to: UniP-3 with the UniC corrector is one order up (4);
    with ``lower_order_final`` (the default, as diffusers) the final steps are lower order and the
    measured order on the kit's grids is about 2."""

    def __init__(
        self,
        solver_order: int = 3,
        variant: Variant = "bh2",
        spacing: Spacing = "log_snr",
        lower_order_final: bool = True,
        disable_corrector: tuple[int, ...] = (),
        clip_sample: float | None = None,
        dynamic_threshold: float | None = None,
        sample_max_value: float | None = None,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.set_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        self.solver_order = check_int("solver_order", solver_order, 1, 3)
        self.variant = check_choice("variant", variant, ("bh1", "bh2"))
        self.lower_order_final = check_bool("lower_order_final", lower_order_final)
        where = f"disable_corrector={disable_corrector!r}: step"
        self.disable_corrector = tuple(check_int(where, i, low=0) for i in disable_corrector)

    def initial_state(self, grid: TimeGrid) -> UniPCState:
        """Plan the coefficients of every step of ``grid`` (host floats); no estimates yet."""
        lams = [half_log_snr(a, s) for a, s in zip(grid.signal_rates, grid.noise_rates)]
        plans = []
        for i in range(grid.num_steps):
            available = min(i + 1, self.solver_order)
            plans.append(self._plan(grid, i, lams[i - available + 1 : i + 1][::-1]))
        return UniPCState(tuple(plans))

    def _plan(self, grid: TimeGrid, i: int, history_lams: list[float]) -> _Plan:
        """Step ``i`` with x0^ at ``history_lams`` (latest first, lambda(times[i]) the first)."""
        s = grid.noise_rates[i]
        a_prev, s_prev = grid.rates(i + 1)
        lam, lam_prev = history_lams[0], half_log_snr(a_prev, s_prev)
        left = grid.steps_left(i)
        order = step_order(self.solver_order, len(history_lams), left, grid.num_steps, self.lower_order_final, math.inf)
        if s_prev == 0.0 or not is_finite(*history_lams[:order]):
            order = 1  # the step to sigma' = 0, or across a zero-SNR start
        if lam_prev == lam:  # zero-length step (final_time="first_step" after linspace/leading)
            return _Plan("stay", lam, 1.0, [], None)
        if s_prev == 0.0:
            return _Plan("x0", lam, 0.0, [1.0], None)
        h = lam_prev - lam
        ratios = [(lam_i - lam) / h for lam_i in history_lams[1:order]]
        c_x, c_m, _ = unipc_coefficients(s_prev / s, a_prev, h, ratios, self.variant, corrector=False)
        correct = None
        if left > 1 and i not in self.disable_corrector and is_finite(lam, lam_prev):
            correct = correction_of(c_m, unipc_coefficients(s_prev / s, a_prev, h, ratios, self.variant, True))
        return _Plan("predict", lam, c_x, c_m, correct)

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: UniPCState | None = None, generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """Correct ``sample`` (the last prediction) with the new estimate (UniC), then predict ``times[i + 1]`` (UniP).

        Both in one linear combination of ``sample`` and the x_0 estimates, with coefficients planned by
        :meth:`initial_state`. The correction is added to ``sample`` as given (a loop that edits x between
        steps keeps its edit; diffusers' scheduler recomputes the corrected x from its own copy).
        """
        state = self.initial_state(grid) if state is None else state
        m_new = self.limited_x0(denoised.x0)
        plan = state.plans[i]
        history = (*state.history, (plan.lam, m_new))[-(self.solver_order + 1) :]
        if len(history) != min(i + 1, self.solver_order + 1):  # a loop that did not start at step 0 of the grid
            plan = self._plan(grid, i, [lam for lam, _ in history[::-1]][: self.solver_order])
        next_state = UniPCState(state.plans, history, plan.correct)
        if plan.kind == "x0":
            return DiffusionStepOutput(prev_sample=m_new, pred_original_sample=m_new, state=next_state)
        c_x, c_m = (1.0, []) if plan.kind == "stay" else (plan.c_x, plan.c_m)
        weights = [c_x, *c_m] if state.pending is None else fold_correction(c_x, c_m, state.pending)
        if len(weights) == 1:  # a zero-length step with nothing to correct
            return DiffusionStepOutput(prev_sample=sample, pred_original_sample=m_new, state=next_state)
        estimates = [m for _, m in history[::-1]]
        prev_sample = linear_combination([sample, *estimates[: len(weights) - 1]], weights)
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=m_new, state=next_state)
