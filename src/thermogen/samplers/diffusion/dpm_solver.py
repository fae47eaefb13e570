"""DPM-Solver++ multistep, 2nd and 3rd order (Lu, Zhou, Bao, Chen, Li & Zhu 2022, arXiv:2211.01095).

The probability-flow ODE in data-prediction form has an exactly solvable linear
part. With ``lambda = log(a / s)`` (half the log-SNR; a = signal rate, s = noise
rate) and ``x0^(lambda)`` the model's x_0 estimate, a step from t to t' is (eq. 9)

    x_{t'} = (s_{t'} / s_t) x_t + s_{t'} * integral_{lambda_t}^{lambda_{t'}} e^lambda x0^(lambda) d lambda

and the solvers approximate x0^(lambda) by a polynomial through the latest
estimates m_0 (at t), m_1, m_2 (at the previous times). With
``h = lambda_{t'} - lambda_t``, ``h_0 = lambda_t - lambda_1``, ``h_1 = lambda_1 - lambda_2``:

* 1st order (= DDIM):  ``x_{t'} = (s_{t'}/s_t) x_t - a_{t'} (e^{-h} - 1) m_0``
* 2M (Algorithm 2):    ``r = h_0 / h``, ``D = (1 + 1/(2r)) m_0 - (1/(2r)) m_1``,
  ``x_{t'} = (s_{t'}/s_t) x_t - a_{t'} (e^{-h} - 1) D``
* 3M: the quadratic through m_0, m_1, m_2 (Newton's divided differences on the
  lambda grid: ``f01 = (m_0 - m_1)/h_0``, ``f12 = (m_1 - m_2)/h_1``,
  ``f012 = (f01 - f12)/(h_0 + h_1)``, so ``x0' = f01 + h_0 f012`` and
  ``x0'' = 2 f012`` at lambda_t), integrated exactly:
  ``x_{t'} = (s_{t'}/s_t) x_t + a_{t'} (phi_0 m_0 + phi_1 x0' + phi_2 x0'')`` with
  ``phi_0 = 1 - e^{-h}``, ``phi_1 = h - 1 + e^{-h}``, ``phi_2 = h^2/2 - h + 1 - e^{-h}``.

Lower order where the history is short (the first steps), where the step goes
to sigma = 0 (h = inf: the result is m_0), where a log-SNR gap is infinite (a
start at zero terminal SNR) and, with ``lower_order_final`` and fewer than 15
steps, on the last steps (last step 1st order, the one before at most 2nd), as
in diffusers' ``DPMSolverMultistepScheduler``. All coefficients are Python
floats computed on the host.

Measured orders (tests/samplers/diffusion/test_samplers.py, exact mixture denoiser, log-SNR grid):
1.9 for 2M and 3.0 for 3M. The 3M term ``phi_2 x0''`` keeps the factor 2 of
``x0'' = 2 f012``; diffusers' third-order update weights its ``D2 = h^2 f012`` by
``phi_2 / h^2``, half of that, which measured ~2.2 here.

Prefer ``log_snr`` (or ``trailing``/``uniform``) grids: ``linspace`` and ``leading``
on a discrete schedule end with one short step to t = 1/T whose step-size ratio
makes the multistep extrapolation unstable (diffusers' DPM-Solver ``linspace``
grid has no such step: its last visited timestep is about T/n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor

from thermogen.checks import check_bool
from thermogen.parameterisation import Denoised
from thermogen.samplers.diffusion.base import DiffusionSampler, DiffusionStepOutput, GeneratorLike
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.multistep import linear_combination, step_order
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing
from thermogen.samplers.diffusion.thresholding import ClipsX0

History = tuple[tuple[float, Tensor], ...]
"""The last x_0 estimates of a loop with their lambdas, oldest first (at most ``solver_order - 1``)."""


def half_log_snr(a: float, s: float) -> float:
    """``lambda = log(a / s)``; -inf where a = 0, +inf where s = 0."""
    if a == 0.0:
        return -math.inf
    if s == 0.0:
        return math.inf
    return math.log(a) - math.log(s)


class DPMSolverPP2M(ClipsX0, DiffusionSampler):
    """DPM-Solver++(2M): multistep, data prediction, 2nd order (Lu et al. 2022, Algorithm 2).

    Args:
        spacing: the time grid; ``log_snr`` is the paper's "uniform lambda".
        lower_order_final: with fewer than 15 steps, lower the order of the last steps.
        clip_sample: clamp each x0^ to [-clip_sample, clip_sample] (None: off).
        dynamic_threshold: Imagen's dynamic thresholding quantile for each x0^ (None: off).
        sample_max_value: cap of the dynamic threshold (None: uncapped).
        final_time: "zero" or "first_step", see :mod:`thermogen.samplers.diffusion.spacing`.
        steps_offset: added to ``leading`` integer timesteps.
        timesteps: the visited times of ``spacing="custom"`` (in (0, 1], decreasing), e.g. a fitted grid.

    Example::

        sampler = DPMSolverPP2M()                               # log-SNR grid, lower_order_final
        grid = sampler.grid(schedule, num_steps=10)
        state = sampler.initial_state(grid)                     # the history of x0^, empty
        for i in range(grid.num_steps):
            out = sampler.step(model.denoise(x, *grid.rates(i)), grid, i, x, state)
            x, state = out.prev_sample, out.state
    """

    solver_order = 2

    conformance: ClassVar[dict[str, Any]] = {"order": 2.0, "steps": 20}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self,
        spacing: Spacing = "log_snr",
        lower_order_final: bool = True,
        clip_sample: float | None = None,
        dynamic_threshold: float | None = None,
        sample_max_value: float | None = None,
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        self.set_grid_options(spacing, final_time, steps_offset, timesteps)
        self.set_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        self.lower_order_final = check_bool("lower_order_final", lower_order_final)

    def initial_state(self, grid: TimeGrid) -> History:
        """No estimates yet: the history of ``(lambda, x0^)`` pairs, oldest first, starts empty."""
        return ()

    def order_for(self, history: History, lam: float, lam_prev: float, grid: TimeGrid, i: int) -> int:
        """The order of step ``i`` from lambda to lambda_prev (host floats only)."""
        if not math.isfinite(lam_prev - lam):
            return 1
        order = step_order(
            self.solver_order, 1 + len(history), grid.steps_left(i), grid.num_steps, self.lower_order_final
        )
        if order >= 2 and not math.isfinite(lam - history[-1][0]):
            return 1
        if order >= 3 and not math.isfinite(history[-1][0] - history[-2][0]):
            return 2
        return order

    def step(self, denoised: Denoised, grid: TimeGrid, i: int, sample: Tensor,
             state: History = (), generator: GeneratorLike = None) -> DiffusionStepOutput:  # fmt: skip
        """One multistep update from ``times[i]`` to ``times[i + 1]``; the new state remembers x0^."""
        (a, s), (a_prev, s_prev) = grid.rates(i), grid.rates(i + 1)
        m0 = self.limited_x0(denoised.x0)
        lam, lam_prev = half_log_snr(a, s), half_log_snr(a_prev, s_prev)
        h = lam_prev - lam
        if h == 0.0:  # zero-length step (final_time="first_step" after linspace/leading)
            prev_sample = sample
        else:
            order = self.order_for(state, lam, lam_prev, grid, i)
            weights = self.x0_integral_weights(order, lam, h, state)
            estimates = [m0, *(m for _, m in state[::-1])][:order]
            prev_sample = linear_combination([sample, *estimates], [s_prev / s, *(a_prev * w for w in weights)])
        history = (*state, (lam, m0))[-(self.solver_order - 1) :]
        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=m0, state=history)

    def x0_integral_weights(self, order: int, lam: float, h: float, history: History) -> list[float]:
        """Weights of m_0, m_1, m_2 in ``e^{lambda_{t'}} * integral e^{lambda} x0^(lambda)`` over the step (host).

        The bracket multiplying a_{t'}: ``phi_0 m_0`` (1st order), ``phi_0 D`` (2M), or
        ``phi_0 m_0 + phi_1 x0' + phi_2 x0''`` (3M) with the divided differences written as weights of the
        estimates, so that the step is one pass over the tensors.
        """
        phi_0 = -math.expm1(-h)  # 1 - e^{-h}; 1 for h = inf
        if order == 1:
            return [phi_0]
        h_0 = lam - history[-1][0]
        if order == 2:
            half_over_r = h / (2.0 * h_0)  # 1 / (2r), r = h_0 / h
            return [phi_0 * (1.0 + half_over_r), -phi_0 * half_over_r]
        h_1 = history[-1][0] - history[-2][0]
        f01 = [1.0 / h_0, -1.0 / h_0, 0.0]  # (m_0 - m_1) / h_0
        f12 = [0.0, 1.0 / h_1, -1.0 / h_1]  # (m_1 - m_2) / h_1
        f012 = [(u - v) / (h_0 + h_1) for u, v in zip(f01, f12)]
        phi_1 = h + math.expm1(-h)  # h - 1 + e^{-h}
        phi_2 = h * h / 2.0 - h - math.expm1(-h)  # h²/2 - h + 1 - e^{-h}
        slope = [u + h_0 * v for u, v in zip(f01, f012)]  # x0' at lambda_t
        return [phi_0 * (j == 0) + phi_1 * d1 + 2.0 * phi_2 * d2 for j, (d1, d2) in enumerate(zip(slope, f012))]


class DPMSolverPP3M(DPMSolverPP2M):
    """DPM-Solver++(3M): the multistep solver with a quadratic x_0 extrapolation (3rd order).

    Same arguments as :class:`DPMSolverPP2M`.

    Example::

        sampler = DPMSolverPP3M()
        out = sampler.sample(model, x_T, sampler.grid(schedule, num_steps=20))
    """

    solver_order = 3
    conformance: ClassVar[dict[str, Any]] = {"order": 3.0, "steps": 20}
