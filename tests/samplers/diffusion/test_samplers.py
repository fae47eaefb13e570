"""Diffusion samplers against an analytic ground truth: a 2-D Gaussian mixture with its exact denoiser.

Run the true sampler loop with :class:`NoisyMixturePredictor` (the exact E[eps | x_t])
and compare the output with the forward-process marginal at the final time,
which is again a Gaussian mixture. Also: convergence orders of the ODE solvers,
the book's DDIM loop, the step-loop plumbing, precisions, configs, spacings and
the diffusers config mapping.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable

import pytest
import torch
from statistical_rules import pooled_spread_error, spread_tolerance

import thermogen
from thermogen import registry
from thermogen.diffusers_interop import (
    load_diffusers_scheduler,
    prediction_type_from_diffusers_config,
    sampler_from_diffusers_config,
)
from thermogen.errors import ConfigError
from thermogen.parameterisation import MIN_RATE, Denoised, denoised_from_output
from thermogen.samplers import STOP, DEISSampler, DiffusionSampler, IPNDMSampler, StepInfo, TimeGrid, UniPCSampler
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.heun import HeunSampler
from thermogen.samplers.diffusion.spacing import timestep_grid
from thermogen.schedules import CosineSchedule, ImprovedCosineSchedule, LinearSchedule, OffsetCosineSchedule
from thermogen.testing import (
    GaussianMixture,
    GaussianMixtureEnergy,
    NoisyMixturePredictor,
    conformance,
    mmd_rbf,
    sliced_wasserstein,
)

# Three well separated modes (>= 8.8 std apart), unequal weights, mean exactly 0: an
# epsilon prediction cannot see x_0 at zero SNR, where E[x_0 | x_1] = the mean = 0.
MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
N = 2000

SCHEDULES: dict[str, Callable[[], thermogen.NoiseSchedule]] = {
    "offset_cosine": OffsetCosineSchedule,
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "improved_cosine": ImprovedCosineSchedule,
}
# name -> (factory, steps that reach the noise floor)
SAMPLERS: dict[str, tuple[Callable[[], DiffusionSampler], int]] = {
    "ddim": (DDIMSampler, 50),
    "ddim_eta1": (lambda: DDIMSampler(eta=1.0), 100),
    "ddpm": (DDPMSampler, 100),
    "dpmpp_2m": (DPMSolverPP2M, 20),
    "dpmpp_3m": (DPMSolverPP3M, 20),
    "euler": (EulerSampler, 50),
    "euler_ancestral": (lambda: EulerSampler(eta=1.0), 100),
    "heun": (HeunSampler, 20),
    "unipc": (UniPCSampler, 20),
    "ipndm": (IPNDMSampler, 20),
    "deis": (DEISSampler, 20),
}
STOCHASTIC = ("ddim_eta1", "ddpm", "euler_ancestral")


pytestmark = pytest.mark.usefixtures("one_thread")


def fractions(mixture: GaussianMixture, x: torch.Tensor) -> torch.Tensor:
    return torch.bincount(mixture.component_of(x), minlength=mixture.num_components).double() / x.shape[0]


def run(
    sampler: DiffusionSampler,
    schedule: thermogen.NoiseSchedule,
    steps: int,
    seed: int = 0,
    n: int = N,
    prediction_type: str = "epsilon",
):
    """Sample from x_T ~ the true marginal at the first time; return (output, the true marginal at the end).

    The exact model outputs ``prediction_type`` (the model's setting; the sampler never sees it).
    """
    grid = sampler.grid(schedule, steps)
    generator = torch.Generator().manual_seed(seed)
    x_T = MIX.noised(grid.noise_rates[0]).sample(n, generator, dtype=torch.float64)
    predictor = NoisyMixturePredictor(MIX, prediction_type=prediction_type)
    out = sampler.sample(predictor, x_T, grid, generator=generator)
    return out, MIX.noised(grid.noise_rates[-1])


# -- the analytic ground truth itself ----------------------------------------------------


def test_mixture_log_prob_integrates_to_one_and_samples_have_the_right_moments() -> None:
    grid = torch.linspace(-5, 5, 301, dtype=torch.float64)
    xy = torch.cartesian_prod(grid, grid)
    mass = MIX.log_prob(xy).exp().sum() * (grid[1] - grid[0]) ** 2
    assert abs(float(mass) - 1.0) < 1e-6
    x = MIX.sample(100_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    mean = (MIX.weights[:, None] * MIX.means).sum(0)
    torch.testing.assert_close(x.mean(0), mean, atol=0.015, rtol=0)
    second = (MIX.weights * (MIX.stds**2 * 2 + (MIX.means**2).sum(1))).sum()
    assert abs(float((x**2).sum(1).mean()) - float(second)) < 0.03


@pytest.mark.parametrize("noise_level", [0.0, 0.3, 0.9, 1.0])
def test_exact_predictions_match_tweedie_by_autograd(noise_level: float) -> None:
    """eps = -s grad log p_s(x) and E[x_0 | x_t] = (x + s² grad log p_s(x)) / a, from autograd on the noisy law."""
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2
    s = torch.full((64,), noise_level, dtype=torch.float64)
    noisy = MIX.noised(noise_level)
    score = torch.func.vmap(torch.func.grad(lambda z: noisy.log_prob(z[None])[0]))(x)
    eps = NoisyMixturePredictor(MIX)(x, s)
    torch.testing.assert_close(eps, -noise_level * score, rtol=1e-10, atol=1e-12)
    a = math.sqrt(1 - noise_level**2)
    x0 = NoisyMixturePredictor(MIX, prediction_type="sample")(x, s)
    if a > 0:
        torch.testing.assert_close(x0, (x + noise_level**2 * score) / a, rtol=1e-9, atol=1e-9)
    else:  # pure noise: the posterior mean is the data mean
        torch.testing.assert_close(x0, torch.zeros_like(x0), rtol=0, atol=1e-12)
    v = NoisyMixturePredictor(MIX, prediction_type="v")(x, s)
    torch.testing.assert_close(v, a * eps - noise_level * x0, rtol=1e-12, atol=1e-12)


def test_mixture_energy_is_minus_log_prob_with_the_closed_form_score() -> None:
    energy = GaussianMixtureEnergy(MIX)
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    e, score = energy.energy_and_score(x)
    torch.testing.assert_close(e, -MIX.log_prob(x))
    auto = super(GaussianMixtureEnergy, energy).energy_and_score(x)[1]  # autograd of forward
    torch.testing.assert_close(score, auto, rtol=1e-10, atol=1e-12)
    assert energy(x.float()).dtype == torch.float32


def test_mixture_models_round_trip_through_their_configs(tmp_path) -> None:
    for model in (NoisyMixturePredictor(MIX, prediction_type="v"), GaussianMixtureEnergy(MIX)):
        config = json.loads(json.dumps(model.to_config()))
        again = thermogen.from_config(config)
        assert type(again) is type(model) and again.config == model.config
        if isinstance(model, NoisyMixturePredictor):  # the model's prediction type is part of its config
            assert config["prediction_type"] == "v" and again.prediction_type == "v"
        model.save_pretrained(tmp_path / config["_class_name"])
        loaded = type(model).from_pretrained(tmp_path / config["_class_name"])
        torch.testing.assert_close(loaded.mixture.means, MIX.means)


def test_distances_against_closed_forms() -> None:
    x = MIX.sample(1200, torch.Generator().manual_seed(5), dtype=torch.float64)
    shift = torch.tensor([0.6, -0.8], dtype=torch.float64)  # |shift| = 1
    # translating every point by c: each 1-D W2 is |u.c|, and E(u.c)^2 = |c|^2 / D on the circle
    assert abs(sliced_wasserstein(x, x + shift, 2048, torch.Generator().manual_seed(0)) - 1 / math.sqrt(2)) < 0.02
    assert sliced_wasserstein(x, x, 16) == 0.0
    same, shifted = mmd_rbf(x[:600], x[600:]), mmd_rbf(x[:600], x[600:] + shift)
    assert abs(same) < 0.01 and shifted > 0.1, (same, shifted)  # unbiased: ~0 for equal laws
    with pytest.raises(ValueError, match="values per sample"):
        mmd_rbf(x, torch.zeros(10, 3))


# -- sampling reproduces the mixture -------------------------------------------------


@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_sampler_reproduces_the_mixture(sampler_name: str, schedule_name: str) -> None:
    """The kit's rule (thermogen.testing.conformance.diffusion_samplers): label shares, per-component means and stds
    against exact draws (rejects stds x1.5, means shrunk 10 %, weights (0.45, 0.33, 0.22) and a moment-matched single
    Gaussian at this N: tests/testing/test_statistical_power.py), and the sliced W2 distance within the noise floor."""
    factory, steps = SAMPLERS[sampler_name]
    conformance.diffusion_samplers.check_reproduces_mixture(factory(), SCHEDULES[schedule_name](), steps)


SPREAD_N, SPREAD_BIAS = 10_000, 0.01  # offset_cosine, 100 steps: a correct sampler's pooled std is off by < 0.5 %


@pytest.mark.parametrize("sampler_name", STOCHASTIC)
def test_stochastic_samplers_add_the_right_amount_of_noise_in_law(sampler_name: str) -> None:
    """The pooled spread of the samples around their components is the truth's, to 3 %.

    Too much or too little step noise widens or narrows every component. On offset_cosine at
    100 steps a correct sampler's discretisation error in the spread is < 0.5 % (measured), so
    the tolerance (4 standard errors + 1 %) rejects Euler-ancestral noise x1.1 (+8 to +9 %),
    DDPM variance x1.3 (+12 %) and DDIM(eta=1) noise x1.1 (+9 %), and exact samples with stds
    x1.05 or x0.95 (tests/testing/test_statistical_power.py). On `linear` at 100 steps the correct
    samplers' own bias (-4 % Euler-ancestral, -8 % DDPM) is as large as these faults: see
    docs/testing.md.
    """
    factory, _ = SAMPLERS[sampler_name]
    out, target = run(factory(), OffsetCosineSchedule(), 100, n=SPREAD_N)
    error = pooled_spread_error(out.sample, target)
    assert abs(error) <= spread_tolerance(SPREAD_N, 2, SPREAD_BIAS), f"pooled std off by {100 * error:.2f} %"


@pytest.mark.parametrize(
    ("factory", "order"),
    [
        (DDIMSampler, 1.0),
        (EulerSampler, 1.0),
        (HeunSampler, 2.0),
        (DPMSolverPP2M, 2.0),
        (DPMSolverPP3M, 3.0),
        (functools.partial(UniPCSampler, lower_order_final=False), 4.0),  # UniP-3 + UniC: one order up
        (functools.partial(UniPCSampler, solver_order=2, lower_order_final=False), 3.0),
        (functools.partial(IPNDMSampler, solver_order=3), 3.0),  # order 4 measures 3.6 at 64/128 steps
        (DEISSampler, 3.0),
    ],
)
def test_ode_samplers_converge_at_their_order(factory: Callable[..., DiffusionSampler], order: float) -> None:
    """The error at 64 steps is 2^order times the error at 128 steps (log-SNR grid, offset cosine): the kit's check."""
    conformance.diffusion_samplers.check_convergence_order(factory(), order)


def test_zero_terminal_snr_with_v_prediction_reproduces_the_mixture() -> None:
    schedule = LinearSchedule(rescale_betas_zero_snr=True)
    for sampler in (DDIMSampler(spacing="trailing"), DPMSolverPP2M()):
        out, target = run(sampler, schedule, 50, prediction_type="v")
        assert bool(out.sample.isfinite().all())
        torch.testing.assert_close(fractions(target, out.sample), target.weights, atol=0.05, rtol=0)


# -- the book's DDIM ---------------------------------------------------------------


def test_book_reverse_diffusion_is_ddim_uniform_on_offset_cosine() -> None:
    """Generative Deep Learning ch. 8: t = 1 - k/S, remix pred x_0 and pred noise at t - 1/S, keep the last pred x_0."""
    steps, schedule = 20, OffsetCosineSchedule()
    model = NoisyMixturePredictor(MIX)
    x_T = torch.randn(500, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = x_T
    for k in range(steps):
        t = 1.0 - k / steps
        signal, noise = schedule.rates(t)
        pred_noise = model(x, torch.full((x.shape[0],), float(noise), dtype=torch.float64))
        pred_images = (x - noise * pred_noise) / signal
        next_signal, next_noise = schedule.rates(t - 1.0 / steps if k < steps - 1 else 0.0)
        x = next_signal * pred_images + next_noise * pred_noise
    for spacing in ("uniform", "linspace"):  # a continuous schedule has no integer grid: linspace = uniform
        sampler = DDIMSampler(spacing=spacing)
        out = sampler.sample(model, x_T, sampler.grid(schedule, steps))
        assert out.times.tolist() == [1.0 - k * (1.0 / steps) for k in range(steps)] + [0.0]
        torch.testing.assert_close(out.sample, x, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out.pred_original_sample, pred_images, rtol=1e-12, atol=1e-12)


# -- the loop: determinism, noise levels, callbacks, trajectories -----------------------


def test_ddim_eta0_is_deterministic_and_ignores_the_generator() -> None:
    model, schedule = NoisyMixturePredictor(MIX), LinearSchedule()
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    sampler = DDIMSampler()
    outs = [
        sampler.sample(model, x_T, sampler.grid(schedule, 10), generator=g).sample
        for g in (None, torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    ]
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize("factory", [lambda: DDIMSampler(eta=1.0), DDPMSampler, lambda: EulerSampler(eta=1.0)])
def test_stochastic_samplers_follow_their_generator(factory: Callable[[], DiffusionSampler]) -> None:
    model, schedule = NoisyMixturePredictor(MIX), OffsetCosineSchedule()
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))

    def draw(seed: int) -> torch.Tensor:
        sampler = factory()
        return sampler.sample(model, x_T, sampler.grid(schedule, 10), torch.Generator().manual_seed(seed)).sample

    assert torch.equal(draw(1), draw(1)) and not torch.equal(draw(1), draw(2))


class RecordingPredictor(NoisyMixturePredictor):
    """The exact predictor of MIX, recording the noise level of every network evaluation."""

    def __init__(self, prediction_type: str = "epsilon") -> None:
        super().__init__(MIX, prediction_type=prediction_type)
        self.levels: list[torch.Tensor] = []

    def forward(self, noisy: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        self.levels.append(noise_level.clone())
        return super().forward(noisy, noise_level)


@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_model_sees_noise_rate_of_each_visited_time(sampler_name: str) -> None:
    sampler, schedule, steps = SAMPLERS[sampler_name][0](), ImprovedCosineSchedule(), 6
    model = RecordingPredictor()
    out = sampler.sample(model, torch.randn(5, 2, dtype=torch.float64), sampler.grid(schedule, steps))
    expected = []
    for t, t_prev in itertools.pairwise(out.times):
        expected.append(schedule.noise_rate(t))
        # Heun's second evaluation: not on the step to sigma = 0, nor from t = 1 of improved_cosine, where
        # the signal rate 4.9e-5 is below MIN_RATE (its default uniform grid starts there)
        if isinstance(sampler, HeunSampler) and schedule.noise_rate(t_prev) > 0 and schedule.signal_rate(t) >= MIN_RATE:
            expected.append(schedule.noise_rate(t_prev))
    assert len(model.levels) == len(expected)
    for level, rate in zip(model.levels, expected):
        assert level.shape == (5,) and level.dtype == torch.float64
        torch.testing.assert_close(level, rate.expand(5), rtol=0, atol=0)


def test_callback_can_replace_the_sample_and_stop() -> None:
    model, schedule, sampler = RecordingPredictor(), LinearSchedule(), DPMSolverPP2M()
    x_T = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen: list[StepInfo] = []
    replacement = torch.full_like(x_T, 0.25)

    def callback(info: StepInfo):
        seen.append(info)
        if info.step == 1:
            return replacement
        if info.step == 3:
            return STOP
        return None

    out = sampler.sample(model, x_T, sampler.grid(schedule, 10), callback=callback, return_trajectory=True)
    assert [info.step for info in seen] == [0, 1, 2, 3] and all(info.num_steps == 10 for info in seen)
    assert len(model.levels) == 4  # stopped after the 4th step
    assert out.times.shape == (5,) and out.trajectory is not None and out.trajectory.shape == (5, 8, 2)
    assert torch.equal(out.trajectory[2], replacement)  # the replaced sample is what the loop continued from
    assert seen[1].t == out.times[2]
    assert torch.equal(out.sample, out.trajectory[-1]) and torch.equal(out.trajectory[0], x_T)


@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_trajectory_shape_and_times(sampler_name: str) -> None:
    sampler = SAMPLERS[sampler_name][0]()
    x_T = torch.randn(3, 2)
    grid = sampler.grid(LinearSchedule(), 7)
    out = sampler.sample(NoisyMixturePredictor(MIX), x_T, grid, return_trajectory=True)
    assert out.trajectory is not None and out.trajectory.shape == (8, 3, 2)
    assert out.times.dtype == torch.float64 and out.times.shape == (8,) and bool((out.times.diff() < 0).all())
    assert out.sample.shape == out.pred_original_sample.shape == (3, 2)


# -- precision and the ends of schedules ------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_low_precision_runs_finite_and_follows_float64(sampler_name: str, dtype: torch.dtype) -> None:
    """Deterministic samplers land in the same mode as in float64 (but for boundary points); stochastic ones
    (whose noise streams differ by dtype) visit the modes with the same frequencies."""
    factory, _ = SAMPLERS[sampler_name]
    schedules = [OffsetCosineSchedule, CosineSchedule, lambda: LinearSchedule(rescale_betas_zero_snr=True)]
    x_T = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = NoisyMixturePredictor(MIX)
    for make_schedule in schedules:
        schedule = make_schedule()
        sampler = factory()
        grid = sampler.grid(schedule, 12)
        outs = [
            sampler.sample(model, x_T.to(d), grid, torch.Generator().manual_seed(1)) for d in (torch.float64, dtype)
        ]
        assert outs[1].sample.dtype == dtype and outs[1].pred_original_sample.dtype == dtype
        assert bool(outs[1].sample.isfinite().all()) and bool(outs[1].pred_original_sample.isfinite().all())
        target = MIX.noised(float(schedule.noise_rate(outs[0].times[-1])))
        if sampler_name in STOCHASTIC:
            torch.testing.assert_close(
                fractions(target, outs[1].sample), fractions(target, outs[0].sample), atol=0.1, rtol=0
            )
        else:
            same_mode = target.component_of(outs[0].sample) == target.component_of(outs[1].sample.double())
            assert float(same_mode.double().mean()) >= 0.95


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v"])
def test_steps_at_both_ends_of_the_time_axis_are_finite(prediction_type: str) -> None:
    """t = 1 with zero terminal SNR (signal 0) and t = 0 with alpha_bar = 1 (noise 0), every sampler, fp16.

    A network output (random) of each prediction type becomes (x0^, eps^) through ``denoised_from_output``
    (at these ends it divides by a floored rate); each step runs on its own two-time grid.
    """
    schedule = LinearSchedule(rescale_betas_zero_snr=True)
    assert float(schedule.signal_rate(1.0)) == 0.0 and float(schedule.noise_rate(0.0)) == 0.0
    x = torch.randn(16, 2, dtype=torch.float16)
    output = torch.randn(16, 2, dtype=torch.float16)

    def denoiser(x_t: torch.Tensor, a: float, s: float) -> Denoised:
        return denoised_from_output(output, prediction_type, x_t, a, s)

    for factory, _ in SAMPLERS.values():
        sampler = factory()
        for t, t_prev in ((1.0, 0.5), (0.5, 0.0), (1.0, 0.0)):
            grid = TimeGrid.from_times(schedule, [t, t_prev])
            out = sampler.solve_step(denoiser, grid, 0, x, sampler.initial_state(grid))
            assert bool(out.prev_sample.isfinite().all()) and bool(out.pred_original_sample.isfinite().all())


# -- configs and validation ---------------------------------------------------------------


CONFIGURED = [
    DDIMSampler(eta=0.3, spacing="trailing", clip_sample=2.0, final_time="first_step"),
    DDPMSampler(
        spacing="leading", variance_type="fixed_large", dynamic_threshold=0.9, sample_max_value=1.5, steps_offset=1
    ),
    DPMSolverPP2M(spacing="karras", lower_order_final=False),
    DPMSolverPP3M(spacing="uniform"),
    EulerSampler(eta=0.5, spacing="log_snr"),
    HeunSampler(spacing="linspace"),
]


@pytest.mark.parametrize("sampler", CONFIGURED, ids=lambda s: type(s).__name__)
def test_config_round_trip(sampler: DiffusionSampler) -> None:
    config = json.loads(json.dumps(sampler.to_config()))
    assert config["_class_name"] in registry.names("samplers")
    again = thermogen.from_config(config)
    assert type(again) is type(sampler) and again.config == sampler.config
    assert DiffusionSampler.from_config(config).config == sampler.config


def test_registered_names() -> None:
    expected = {
        "ddim": DDIMSampler,
        "ddpm": DDPMSampler,
        "dpmpp_2m": DPMSolverPP2M,
        "dpmpp_3m": DPMSolverPP3M,
        "euler": EulerSampler,
        "heun": HeunSampler,
    }
    for name, cls in expected.items():
        assert registry.get("samplers", name) is cls


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: DDIMSampler(eta=-1.0), "eta=-1.0"),
        (lambda: DDIMSampler(spacing="cosine"), "spacing='cosine'"),
        (lambda: NoisyMixturePredictor(MIX, prediction_type="v_prediction"), "prediction_type='v_prediction'"),
        (lambda: NoisyMixturePredictor(MIX).set_prediction_type("x0"), "prediction_type='x0'"),
        (lambda: DDIMSampler(clip_sample=0.0), "clip_sample=0.0"),
        (lambda: DDPMSampler(variance_type="learned"), "variance_type='learned'"),
        (lambda: DPMSolverPP2M(final_time="one"), "final_time='one'"),
        (lambda: EulerSampler(eta=2.0), "eta=2.0"),
        (lambda: HeunSampler(steps_offset=-1), "steps_offset=-1"),
    ],
)
def test_bad_arguments_name_the_value(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        make()


# -- spacings --------------------------------------------------------------------------------


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace", "uniform", "log_snr", "karras"])
@pytest.mark.parametrize("schedule_name", sorted(SCHEDULES))
def test_grids_decrease_to_the_final_time(spacing: str, schedule_name: str) -> None:
    schedule = SCHEDULES[schedule_name]()
    for steps in (1, 2, 10, 50):
        grid = timestep_grid(schedule, steps, spacing)
        assert grid.dtype == torch.float64 and grid.shape == (steps + 1,)
        assert bool((grid.diff() < 0).all()) and grid[-1] == 0.0 and float(grid[0]) <= 1.0


def test_karras_and_log_snr_grids_follow_their_formulas() -> None:
    schedule = LinearSchedule()
    sigma = lambda t: schedule.noise_rate(t) / schedule.signal_rate(t)  # noqa: E731
    karras = timestep_grid(schedule, 10, "karras")
    sigmas = sigma(karras[:-1]) ** (1 / 7.0)  # evenly spaced in sigma^(1/rho), rho = 7 (EDM eq. 5) ...
    torch.testing.assert_close(sigmas.diff(), sigmas.diff().mean().expand(9), rtol=1e-9, atol=0)
    assert karras[0] == 1.0 and float(sigma(1.0)) < math.exp(5.1)  # ... from t = 1 (sigma 157 < e^5.1) ...
    torch.testing.assert_close(karras[-2], torch.tensor(1e-3, dtype=torch.float64))  # ... to the first step
    cosine = registry.get("schedules", "improved_cosine")()  # sigma(1) = 2e4: from the log-SNR floor lambda = -5.1
    for spacing in ("karras", "log_snr"):
        start = timestep_grid(cosine, 10, spacing)[0]
        half_log_snr = 0.5 * cosine.log_snr(start)
        torch.testing.assert_close(half_log_snr, torch.tensor(-5.1, dtype=torch.float64), rtol=0, atol=1e-9)
    offset = OffsetCosineSchedule()  # sigma(0) > 0: n + 1 points evenly in log-SNR, from t = 1 to t = 0
    log_snr = offset.log_snr(timestep_grid(offset, 10, "log_snr"))
    torch.testing.assert_close(log_snr.diff(), log_snr.diff().mean().expand(10), rtol=1e-9, atol=0)


def test_final_time_first_step_is_diffusers_set_alpha_to_one_false() -> None:
    schedule = LinearSchedule()
    grid = timestep_grid(schedule, 10, "linspace", "first_step")
    assert grid[-1] == grid[-2] == 1e-3  # the zero-length last step only reports x_0
    assert timestep_grid(schedule, 10, "trailing", "first_step")[-1] == 1e-3
    with pytest.raises(ConfigError, match="discrete schedule"):
        timestep_grid(CosineSchedule(), 10, "uniform", "first_step")
    with pytest.raises(ValueError, match="exceeds"):
        timestep_grid(schedule, 1001, "leading")


# -- diffusers configs -------------------------------------------------------------------------


def test_diffusers_configs_map_to_samplers() -> None:
    ddim_config = {
        "_class_name": "DDIMScheduler",
        "timestep_spacing": "trailing",
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "prediction_type": "v_prediction",
        "clip_sample": True,
        "clip_sample_range": 1.5,
    }
    ddim = sampler_from_diffusers_config(ddim_config)
    assert (
        isinstance(ddim, DDIMSampler)
        and ddim.config
        == DDIMSampler(spacing="trailing", final_time="first_step", steps_offset=1, clip_sample=1.5).config
    )
    # the prediction type belongs to the model now: read separately, not part of the sampler
    assert prediction_type_from_diffusers_config(ddim_config) == "v"
    assert prediction_type_from_diffusers_config({"_class_name": "DDIMScheduler"}) == "epsilon"
    default_ddim = sampler_from_diffusers_config({"_class_name": "DDIMScheduler"})
    assert default_ddim.config == DDIMSampler(spacing="leading", clip_sample=1.0).config
    thresholded = sampler_from_diffusers_config(
        {
            "_class_name": "DDPMScheduler",
            "thresholding": True,
            "dynamic_thresholding_ratio": 0.9,
            "sample_max_value": 2.0,
            "variance_type": "fixed_large_log",
        }
    )
    assert (
        thresholded.config
        == DDPMSampler(dynamic_threshold=0.9, sample_max_value=2.0, variance_type="fixed_large").config
    )
    dpm = sampler_from_diffusers_config(
        {
            "_class_name": "DPMSolverMultistepScheduler",
            "solver_order": 3,
            "use_karras_sigmas": True,
            "algorithm_type": "dpmsolver++",
            "lower_order_final": False,
            "final_sigmas_type": "sigma_min",
        }
    )
    assert (
        isinstance(dpm, DPMSolverPP3M)
        and dpm.config == DPMSolverPP3M(spacing="karras", lower_order_final=False, final_time="first_step").config
    )
    assert isinstance(sampler_from_diffusers_config({"_class_name": "DPMSolverMultistepScheduler"}), DPMSolverPP2M)
    first = sampler_from_diffusers_config({"_class_name": "DPMSolverMultistepScheduler", "solver_order": 1})
    assert isinstance(first, DDIMSampler) and first.eta == 0.0
    ancestral = sampler_from_diffusers_config({"_class_name": "EulerAncestralDiscreteScheduler"})
    assert isinstance(ancestral, EulerSampler) and ancestral.eta == 1.0 and ancestral.spacing == "linspace"
    assert isinstance(sampler_from_diffusers_config({"_class_name": "HeunDiscreteScheduler"}), HeunSampler)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"_class_name": "PNDMScheduler"}, "PNDMScheduler"),
        ({"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"}, "sde-dpmsolver"),
        ({"_class_name": "DDPMScheduler", "variance_type": "learned_range"}, "learned_range"),
        ({"_class_name": "DDIMScheduler", "timestep_spacing": "karras"}, "karras"),
        ({"_class_name": "DDIMScheduler", "steps_offset": "1"}, "steps_offset"),
        ({"_class_name": "EulerDiscreteScheduler", "use_exponential_sigmas": True}, "use_exponential_sigmas"),
    ],
)
def test_unsupported_diffusers_configs_are_config_errors(config: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        sampler_from_diffusers_config(config)


def test_load_diffusers_scheduler_from_dict_file_and_folder(tmp_path) -> None:
    config = {
        "_class_name": "DDIMScheduler",
        "_diffusers_version": "0.30.0",
        "beta_schedule": "scaled_linear",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "num_train_timesteps": 1000,
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
        "timestep_spacing": "leading",
    }
    (tmp_path / "scheduler").mkdir()
    (tmp_path / "scheduler" / "scheduler_config.json").write_text(json.dumps(config))
    for source in (config, tmp_path / "scheduler" / "scheduler_config.json", tmp_path):
        parts = load_diffusers_scheduler(source)
        schedule, sampler = parts.schedule, parts.sampler
        assert type(schedule).__name__ == "ScaledLinearSchedule" and schedule.config["beta_end"] == 0.012
        assert isinstance(sampler, DDIMSampler) and sampler.final_time == "first_step" and sampler.steps_offset == 1
        assert parts.prediction_type == "epsilon"  # diffusers' default when the key is missing
        grid = sampler.grid(schedule, 5)
        assert list(grid.times) == [(k + 1) / 1000 for k in (801, 601, 401, 201, 1)] + [1e-3]
    with pytest.raises(ConfigError, match="not found"):
        load_diffusers_scheduler(tmp_path / "scheduler" / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no scheduler_config.json"):
        load_diffusers_scheduler(tmp_path / "empty")
