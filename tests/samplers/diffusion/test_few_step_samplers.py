"""UniPC, iPNDM and DEIS: published update formulas on closed-form cases, order rules, configs.

Their match with diffusers is in tests/samplers/diffusion/test_few_step_reference.py; their
convergence orders and mixture reproduction in tests/samplers/diffusion/test_samplers.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import Tensor

from thermogen import registry
from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule
from thermogen.samplers import DEISSampler, DiffusionSampler, DPMSolverPP3M, IPNDMSampler, TimeGrid, UniPCSampler
from thermogen.samplers.diffusion.adams import AdamsSampler, adams_weights
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.dpm_solver import half_log_snr
from thermogen.samplers.diffusion.multistep import step_order
from thermogen.schedules import LinearSchedule, OffsetCosineSchedule
from thermogen.testing import MIXTURES, GaussianMixture, NoisyMixturePredictor

MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
MODEL = NoisyMixturePredictor(MIX)
MULTISTEP: dict[str, Callable[..., DiffusionSampler]] = {
    "unipc": UniPCSampler,
    "ipndm": IPNDMSampler,
    "deis": DEISSampler,
    "dpmpp_3m": DPMSolverPP3M,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def x_T(n: int = 64) -> Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def sigma_grid(schedule: NoiseSchedule, sigmas: Tensor) -> Tensor:
    """Times whose sigma = s / a are ``sigmas`` (bisection-accurate)."""
    return schedule.time_from_log_snr(-2.0 * torch.log(sigmas))


def published_loop(schedule: NoiseSchedule, times: Tensor, coefficients: Callable[[list[float], int], list[float]]):
    """Adams-Bashforth on dx~/dsigma = eps^ in x~ = x / a, written out: the papers' loop."""
    signal, noise = schedule.rates64(times)
    sigmas = (noise / signal).tolist()
    x_tilde, derivatives = x_T() / float(signal[0]), []
    for i in range(len(sigmas) - 1):
        x = x_tilde * float(signal[i])
        derivatives.insert(0, MODEL(x, torch.full((x.shape[0],), float(noise[i]), dtype=torch.float64)))
        weights = coefficients(sigmas[: i + 2], i)
        x_tilde = x_tilde + (sigmas[i + 1] - sigmas[i]) * sum(w * d for w, d in zip(weights, derivatives))
    return x_tilde * float(signal[-1])


def test_ipndm_on_equal_sigma_steps_is_the_published_ipndm() -> None:
    """Coefficients 1; (3, -1)/2; (23, -16, 5)/12; (55, -59, 37, -9)/24 on the derivatives, latest first."""
    table = [[1.0], [3 / 2, -1 / 2], [23 / 12, -16 / 12, 5 / 12], [55 / 24, -59 / 24, 37 / 24, -9 / 24]]
    schedule = OffsetCosineSchedule()
    sigma_start = float(schedule.noise_rate(1.0) / schedule.signal_rate(1.0))
    sigma_end = float(schedule.noise_rate(0.0) / schedule.signal_rate(0.0))
    times = sigma_grid(schedule, torch.linspace(sigma_start, sigma_end, 13, dtype=torch.float64))
    expected = published_loop(schedule, times, lambda _, i: table[min(i, 3)])
    sampler = IPNDMSampler(solver_order=4, lower_order_final=False)
    got = sampler.sample(MODEL, x_T(), TimeGrid.from_times(schedule, times)).sample
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_ipndm_order_2_is_the_variable_step_adams_bashforth_formula() -> None:
    """ipndm_v, order 2: ``x~' = x~ + h_n ((1 + r/2) d_0 - (r/2) d_1)``, r = h_n / h_{n-1}, on an uneven grid."""

    def ab2(sigmas: list[float], i: int) -> list[float]:
        if i == 0:
            return [1.0]
        r = (sigmas[i + 1] - sigmas[i]) / (sigmas[i] - sigmas[i - 1])
        return [1.0 + r / 2.0, -r / 2.0]

    schedule = OffsetCosineSchedule()
    grid = IPNDMSampler(spacing="karras").grid(schedule, 9)
    expected = published_loop(schedule, grid.as_tensor(), ab2)
    got = IPNDMSampler(solver_order=2, lower_order_final=False).sample(MODEL, x_T(), grid).sample
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_adams_weights_are_the_closed_form_integrals() -> None:
    """Linear interpolation in sigma (trapezoid algebra) and in log sigma (DEIS tAB2 in closed form)."""
    s0, s1, nxt = 2.0, 3.5, 1.1
    h = nxt - s0
    assert adams_weights([s0, s1], nxt, log=False) == pytest.approx(
        [h + h * h / (2 * (s0 - s1)), -(h * h) / (2 * (s0 - s1))], rel=1e-13
    )

    def primitive(x: float, b: float, c: float) -> float:  # integral of (ln x - ln c) / (ln b - ln c) dx
        return x * (math.log(x) - math.log(c) - 1.0) / (math.log(b) - math.log(c))

    expected = [primitive(nxt, s0, s1) - primitive(s0, s0, s1), primitive(nxt, s1, s0) - primitive(s0, s1, s0)]
    assert adams_weights([s0, s1], nxt, log=True) == pytest.approx(expected, rel=1e-13)
    # weights of any order integrate constants exactly and reproduce a polynomial of their degree
    nodes = [80.0, 120.0, 200.0, 400.0]
    assert sum(adams_weights(nodes, 30.0, log=False)) == pytest.approx(30.0 - 80.0, rel=1e-13)
    cubic = [v**3 for v in nodes]
    assert sum(w * c for w, c in zip(adams_weights(nodes, 30.0, log=False), cubic)) == pytest.approx(
        (30.0**4 - 80.0**4) / 4, rel=1e-12
    )


def test_unipc_order_1_with_corrector_is_second_order_and_without_is_ddim() -> None:
    """UniP-1 is DDIM (DPM-Solver++ 1st order); UniC lifts it to order 2 at no extra evaluation."""
    schedule = OffsetCosineSchedule()
    plain = UniPCSampler(solver_order=1, disable_corrector=tuple(range(16)), spacing="log_snr")
    ddim = DDIMSampler(spacing="log_snr")
    torch.testing.assert_close(
        plain.sample(MODEL, x_T(), plain.grid(schedule, 16)).sample,
        ddim.sample(MODEL, x_T(), ddim.grid(schedule, 16)).sample,
        rtol=1e-12,
        atol=1e-12,
    )


def test_step_order_counts_down_at_the_end_with_lower_order_final() -> None:
    assert [step_order(3, min(i + 1, 3), 10 - i, 10, True) for i in range(10)] == [1, 2, 3, 3, 3, 3, 3, 3, 2, 1]
    assert [step_order(3, min(i + 1, 3), 10 - i, 10, False) for i in range(10)] == [1, 2] + [3] * 8
    assert [step_order(3, 3, 20 - i, 20, True) for i in range(17, 20)] == [3, 3, 3]  # 15 steps or more: off
    assert [step_order(3, 3, 20 - i, 20, True, below=math.inf) for i in range(17, 20)] == [3, 2, 1]  # UniPC


@pytest.mark.parametrize("name", sorted(MULTISTEP))
def test_lower_order_final_changes_the_last_steps_only(name: str) -> None:
    schedule = LinearSchedule()
    samplers = [MULTISTEP[name](lower_order_final=flag) for flag in (True, False)]
    outs = [sampler.sample(MODEL, x_T(), sampler.grid(schedule, 8), return_trajectory=True) for sampler in samplers]
    trajectories = [out.trajectory for out in outs]
    assert trajectories[0] is not None and trajectories[1] is not None
    torch.testing.assert_close(trajectories[0][:-3], trajectories[1][:-3], rtol=0, atol=0)
    assert not torch.equal(trajectories[0][-2], trajectories[1][-2])


@pytest.mark.parametrize("name", sorted(MULTISTEP))
def test_the_step_to_sigma_zero_returns_the_x0_estimate(name: str) -> None:
    """The last step to t = 0 (alpha_bar = 1) is first order even without lower_order_final."""
    sampler = MULTISTEP[name](lower_order_final=False)
    out = sampler.sample(MODEL, x_T(), sampler.grid(LinearSchedule(), 6))
    assert float(out.times[-1]) == 0.0
    torch.testing.assert_close(out.sample, out.pred_original_sample, rtol=0, atol=0)


def test_registered_names_and_config_round_trip() -> None:
    for name, cls in (("unipc", UniPCSampler), ("ipndm", IPNDMSampler), ("deis", DEISSampler)):
        assert registry.get("samplers", name) is cls
    for sampler in (
        UniPCSampler(solver_order=2, variant="bh1", spacing="trailing", disable_corrector=(0, 3)),
        IPNDMSampler(solver_order=3, spacing="log_snr", lower_order_final=False),
        DEISSampler(solver_order=2, final_time="first_step"),
    ):
        rebuilt = DiffusionSampler.from_config(sampler.to_config())
        assert type(rebuilt) is type(sampler) and rebuilt.config == sampler.config


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: UniPCSampler(solver_order=4), "solver_order=4"),
        (lambda: UniPCSampler(variant="bh3"), "variant='bh3'"),  # type: ignore[arg-type]
        (lambda: UniPCSampler(disable_corrector=(-1,)), "disable_corrector=(-1,)"),
        (lambda: IPNDMSampler(solver_order=5), "solver_order=5"),
        (lambda: DEISSampler(solver_order=4), "solver_order=4"),
        (lambda: DEISSampler(lower_order_final="yes"), "lower_order_final='yes'"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_name_the_value(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        make()


def plan_on_the_spot(sampler: Any, grid: TimeGrid, i: int, state: Any) -> Any:
    """Step ``i``'s coefficients computed from what the loop holds at that step (not from the whole grid).

    UniPC: the half log-SNRs of the x_0 estimates in its history, latest first, the new one at times[i]
    first. Adams (iPNDM, DEIS): the sigmas of the eps^ estimates it will combine, latest first.
    """
    if isinstance(sampler, UniPCSampler):
        lams = [half_log_snr(*grid.rates(i)), *(lam for lam, _ in state.history[::-1])]
        return sampler._plan(grid, i, lams[: sampler.solver_order])
    assert isinstance(sampler, AdamsSampler)
    sigma = [s / a if a > 0.0 else math.inf for a, s in zip(grid.signal_rates, grid.noise_rates)]
    used = min(len(state.history) + 1, sampler.solver_order)
    return sampler._plan(grid, i, [sigma[i - j] for j in range(used)], sigma[i + 1])


@pytest.mark.parametrize("name", ["unipc", "ipndm", "deis"])
def test_coefficients_planned_by_initial_state_equal_those_computed_per_step(name: str) -> None:
    """The per-step weights made once per grid (``initial_state``) give the trajectory of weights computed at
    each step from the loop's own history.

    The second loop starts with no plan at all (every entry None), so every step takes the on-the-spot
    coefficients, put in place just before the step reads them.
    """
    schedule = LinearSchedule()
    sampler = MULTISTEP[name]()
    grid = sampler.grid(schedule, 8)
    planned = sampler.initial_state(grid)
    per_step = planned._replace(plans=(None,) * grid.num_steps)
    x = y = x_T()
    for i in range(grid.num_steps):
        out = sampler.step(MODEL.denoise(x, *grid.rates(i)), grid, i, x, planned)
        x, planned = out.prev_sample, out.state
        plan = plan_on_the_spot(sampler, grid, i, per_step)
        assert plan == planned.plans[i], f"step {i}"
        per_step = per_step._replace(plans=(*per_step.plans[:i], plan, *per_step.plans[i + 1 :]))
        out = sampler.step(MODEL.denoise(y, *grid.rates(i)), grid, i, y, per_step)
        y, per_step = out.prev_sample, out.state
    assert None not in per_step.plans
    torch.testing.assert_close(x, y, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", sorted(MIXTURES))
def test_every_benchmark_mixture_is_reproduced_by_a_fine_solve_from_pure_noise(name: str) -> None:
    """A fine DPM-Solver++ 3M solve (100 steps) with each mixture's exact predictor, from N(0, I) as a
    pipeline starts, gives every component its weight (to 0.03), its mean (to 4 standard errors) and its std
    (to 10 %). The std is the data's shrunk by the last step, from sigma_min = sigma(1/T) = 0.01 to 0, which
    returns the posterior mean: ``std * std / hypot(std, sigma_min)`` (5 % less for the 0.03-wide mode)."""
    mixture, schedule = MIXTURES[name](), LinearSchedule()
    sampler = DPMSolverPP3M()
    out = sampler.sample(NoisyMixturePredictor(mixture), x_T(4000), sampler.grid(schedule, 100))
    sigma_min = float(schedule.noise_rate(1e-3) / schedule.signal_rate(1e-3))
    component = mixture.component_of(out.sample)
    counts = torch.bincount(component, minlength=mixture.num_components) / 4000
    torch.testing.assert_close(counts.double(), mixture.weights, rtol=0, atol=0.03)
    for k in range(mixture.num_components):
        members = out.sample[component == k]
        std = float(mixture.stds[k])
        torch.testing.assert_close(members.mean(0), mixture.means[k], rtol=0, atol=4 * std / len(members) ** 0.5)
        assert members.std(0).mean().item() == pytest.approx(std * std / math.hypot(std, sigma_min), rel=0.1)


def test_unipc_corrects_the_sample_it_is_given() -> None:
    """UniPC adds its correction (UniC minus UniP, a combination of x_0 estimates) to the sample the loop hands
    it, then predicts: the step is affine in that sample with slope ``c_x = s'/s``. A loop that edits x between
    steps (inpainting) keeps its edit, scaled as any x is."""
    schedule, sampler = LinearSchedule(), UniPCSampler()
    grid = sampler.grid(schedule, 8)
    state, x = sampler.initial_state(grid), x_T()
    for i in range(3):
        out = sampler.step(MODEL.denoise(x, *grid.rates(i)), grid, i, x, state)
        x, state = out.prev_sample, out.state
    assert state.pending is not None  # step 3 corrects the result of step 2
    denoised, edit = MODEL.denoise(x, *grid.rates(3)), torch.full_like(x, 0.25)
    plain = sampler.step(denoised, grid, 3, x, state).prev_sample
    edited = sampler.step(denoised, grid, 3, x + edit, state).prev_sample
    s, s_next = grid.noise_rates[3], grid.noise_rates[4]
    torch.testing.assert_close(edited - plain, edit * (s_next / s), rtol=0, atol=1e-12)
