"""Conformance checks for diffusion samplers (:class:`thermogen.samplers.DiffusionSampler`).

Ground truth is :data:`MIXTURE`, a 2-D Gaussian mixture whose exact denoiser
(:class:`~thermogen.testing.NoisyMixturePredictor`) stands in for a trained network, so
any error is the sampler's. A sampler states what it claims in its class's
``conformance`` dict (see :mod:`thermogen.testing.conformance.components`): ``"order"``
on the probability-flow ODE and ``"steps"``, the budget at which it reaches the noise floor.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from thermogen.interfaces import NoiseSchedule
from thermogen.parameterisation import PREDICTION_TYPES, Denoised, denoised_from_output
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.testing.conformance.components import claims, configuration_only_result, rebuilt_from_config, resolve
from thermogen.testing.conformance.mixture import mixture_mismatches
from thermogen.testing.conformance.report import CheckResult, passed, require, skipped
from thermogen.testing.distances import sliced_wasserstein
from thermogen.testing.gaussian_mixture import GaussianMixture, NoisyMixturePredictor

MIXTURE = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
"""Three well separated modes (>= 8.8 std apart), unequal weights, mean exactly 0 (so an
epsilon prediction is exact at zero SNR, where E[x_0 | x_1] is the data mean)."""
MIXTURE_N = 5000
"""Samples in the mixture check: enough to tell weights (0.45, 0.33, 0.22) from (0.5, 0.3, 0.2)."""


def _sampler(sampler: Any) -> DiffusionSampler:
    return resolve(sampler, "samplers")


def _schedule(schedule: NoiseSchedule | str) -> NoiseSchedule:
    return resolve(schedule, "schedules")


def _run(sampler: DiffusionSampler, schedule: NoiseSchedule, steps: int, n: int, seed: int = 0) -> tuple[Any, Any]:
    """Sample from the true marginal at the first time; return (output, the true marginal at the last time)."""
    grid = sampler.grid(schedule, steps)
    generator = torch.Generator().manual_seed(seed)
    x_T = MIXTURE.noised(grid.noise_rates[0]).sample(n, generator, dtype=torch.float64)
    out = sampler.sample(NoisyMixturePredictor(MIXTURE), x_T, grid, generator=generator)
    return out, MIXTURE.noised(grid.noise_rates[-1])


def _swd(x: torch.Tensor, y: torch.Tensor) -> float:
    return sliced_wasserstein(x, y, num_projections=128, generator=torch.Generator().manual_seed(1))


def check_reproduces_mixture(
    sampler: Any,
    schedule: NoiseSchedule | str = "offset_cosine",
    steps: int | None = None,
    mean_bias: float = 0.2,
    std_bias: float = 0.12,
) -> CheckResult:
    """With the exact denoiser, 5,000 samples match the mixture's noisy marginal at the last time.

    The rule of :func:`~thermogen.testing.conformance.mixture.mixture_mismatches` (label shares,
    per-component means and stds; the allowances cover the discretisation error of a correct
    sampler at its stated budget: 0.2 stds in a mean, 12 % in a std), and the sliced
    Wasserstein distance within 2.5 noise floors + 0.02. ``steps`` defaults to the stated budget.
    """
    s = _sampler(sampler)
    budget = steps or int(claims(s).get("steps", 100))
    out, target = _run(s, _schedule(schedule), budget, MIXTURE_N)
    where = f"{budget} steps on {schedule if isinstance(schedule, str) else type(schedule).__name__}"
    require(bool(out.sample.isfinite().all()), "reproduces_mixture", where, "non-finite samples")
    problems = mixture_mismatches(out.sample, target, mean_bias=mean_bias, std_bias=std_bias)
    require(not problems, "reproduces_mixture", f"samples do not match the mixture ({where})", "; ".join(problems))
    generator = torch.Generator().manual_seed(10)
    references = [target.sample(MIXTURE_N, generator, dtype=torch.float64) for _ in range(4)]
    floor = sum(_swd(references[0], r) for r in references[1:]) / 3  # between independent exact sample sets
    distance = _swd(out.sample, references[0])
    require(
        distance <= 2.5 * floor + 0.02,
        "reproduces_mixture",
        f"sliced W2 above the noise floor ({where})",
        f"sliced W2 {distance:.4f} vs floor {floor:.4f}",
    )
    return passed("reproduces_mixture", f"sliced W2 {distance:.4f} (floor {floor:.4f}), {where}")


_ODE: dict[str, torch.Tensor] = {}


def _ode_solution() -> tuple[torch.Tensor, torch.Tensor]:
    """x_T (128, 2) and its probability-flow ODE solution on offset_cosine (DPM-Solver++ 3M, 1024 steps: ~1e-7)."""
    if not _ODE:
        from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP3M
        from thermogen.schedules import OffsetCosineSchedule

        x_T = torch.randn(128, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        solver = DPMSolverPP3M(spacing="log_snr")
        exact = solver.sample(NoisyMixturePredictor(MIXTURE), x_T, solver.grid(OffsetCosineSchedule(), 1024))
        _ODE.update(x_T=x_T, exact=exact.sample)
    return _ODE["x_T"], _ODE["exact"]


def check_convergence_order(sampler: Any, order: float | None = None, tolerance: float = 0.3) -> CheckResult:
    """The error at 64 steps is 2^order times the error at 128 (offset cosine, log-SNR grid, epsilon model).

    ``order`` defaults to the class's stated ``conformance["order"]``; without one the check is skipped.
    """
    s = _sampler(sampler)
    stated = order if order is not None else claims(s).get("order")
    if stated is None:
        return skipped("convergence_order", "no order stated")
    if "spacing" in s.config:  # an even log-SNR grid, where the error constants are smooth in the step size
        s = type(s)(**{**s.config, "spacing": "log_snr"})
    from thermogen.schedules import OffsetCosineSchedule

    model, schedule = NoisyMixturePredictor(MIXTURE), OffsetCosineSchedule()
    x_T, exact = _ode_solution()
    errors = [float((s.sample(model, x_T, s.grid(schedule, n)).sample - exact).pow(2).mean().sqrt()) for n in (64, 128)]
    measured = math.log2(errors[0] / errors[1]) if errors[1] > 0 else math.inf
    require(
        abs(measured - stated) < tolerance,
        "convergence_order",
        f"stated order {stated:g} on the probability-flow ODE",
        f"order {measured:.2f} (RMS errors {errors[0]:.2e} at 64 steps, {errors[1]:.2e} at 128)",
    )
    return passed("convergence_order", f"order {measured:.2f} (stated {stated:g})")


def _draw(sampler: DiffusionSampler, x_T: torch.Tensor, generator: Any, steps: int = 10) -> torch.Tensor:
    from thermogen.schedules import OffsetCosineSchedule

    grid = sampler.grid(OffsetCosineSchedule(), steps)
    return sampler.sample(NoisyMixturePredictor(MIXTURE), x_T, grid, generator=generator).sample


def check_deterministic_under_generator(sampler: Any) -> CheckResult:
    """Two runs with generators of one seed give the same samples; the global RNG is not touched."""
    s = _sampler(sampler)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    state = torch.get_rng_state()
    first, again = (_draw(s, x_T, torch.Generator().manual_seed(1)) for _ in range(2))
    touched = not torch.equal(state, torch.get_rng_state())
    torch.set_rng_state(state)
    difference = float((first - again).abs().max())
    require(
        difference == 0.0,
        "deterministic_under_generator",
        "two runs with torch.Generator().manual_seed(1) differ: the sampler ignores its generator",
        f"max |difference| {difference:.3g}",
    )
    require(
        not touched,
        "deterministic_under_generator",
        "the sampler draws from the global RNG",
        "torch.get_rng_state() changed",
    )
    other = _draw(s, x_T, torch.Generator().manual_seed(2))
    kind = "stochastic" if not torch.equal(first, other) else "deterministic"
    return passed("deterministic_under_generator", f"{kind}; same seed, same samples")


def check_batch_independence(sampler: Any) -> CheckResult:
    """A sample does not depend on its batch mates: rows of a batch of 6 equal the same rows run as a batch of 2.

    One generator per sample (a list, diffusers' convention) feeds each row its own noise.
    """
    s = _sampler(sampler)
    x_T = torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gens = lambda rows: [torch.Generator().manual_seed(100 + i) for i in rows]  # noqa: E731
    full = _draw(s, x_T, gens(range(6)))
    part = _draw(s, x_T[2:4], gens(range(2, 4)))
    difference = float((full[2:4] - part).abs().max())
    require(
        difference <= 1e-9,
        "batch_independence",
        "rows 2-3 of a batch of 6 vs the same rows alone (float64)",
        f"max |difference| {difference:.3g}",
    )
    return passed("batch_independence", f"max |difference| {difference:.1e}")


def check_dtype_kept(sampler: Any) -> CheckResult:
    """float32, bfloat16 and float16 samples stay in their dtype and finite (offset cosine, 12 steps)."""
    s = _sampler(sampler)
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    from thermogen.schedules import OffsetCosineSchedule

    model, grid = NoisyMixturePredictor(MIXTURE), s.grid(OffsetCosineSchedule(), 12)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        out = s.sample(model, x_T.to(dtype), grid, torch.Generator().manual_seed(1))
        for name in ("sample", "pred_original_sample"):
            value = getattr(out, name)
            require(value.dtype == dtype, "dtype_kept", f"{name} from a {dtype} start", f"dtype {value.dtype}")
            require(bool(value.isfinite().all()), "dtype_kept", f"{name} from a {dtype} start", "non-finite values")
    return passed("dtype_kept", "float32/bf16/fp16 finite")


def check_finite_at_schedule_ends(sampler: Any) -> CheckResult:
    """Steps from t = 1 with zero terminal SNR (signal 0) and to t = 0 (noise 0) are finite, in float16.

    The schedule is ``linear`` rescaled with ``rescale_betas_zero_snr=True``; the denoiser turns
    random network outputs into (x0^, eps^) under each prediction type (at these ends the
    conversions divide by a floored rate); the whole loop runs too.
    """
    from thermogen.samplers.diffusion.grid import TimeGrid
    from thermogen.schedules import LinearSchedule

    s = _sampler(sampler)
    schedule = LinearSchedule(rescale_betas_zero_snr=True)
    x = torch.randn(16, 2, dtype=torch.float16, generator=torch.Generator().manual_seed(0))
    output = torch.randn(16, 2, dtype=torch.float16, generator=torch.Generator().manual_seed(1))
    for prediction_type in PREDICTION_TYPES:

        def denoiser(x_t: torch.Tensor, a: float, s_t: float, kind: str = prediction_type) -> Denoised:
            return denoised_from_output(output, kind, x_t, a, s_t)

        for t, t_prev in ((1.0, 0.5), (0.5, 0.0), (1.0, 0.0)):
            grid = TimeGrid.from_times(schedule, [t, t_prev])
            step = s.solve_step(denoiser, grid, 0, x, s.initial_state(grid), torch.Generator().manual_seed(2))
            finite = bool(step.prev_sample.isfinite().all()) and bool(step.pred_original_sample.isfinite().all())
            require(
                finite,
                "finite_at_schedule_ends",
                f"step from t = {t} to {t_prev}, zero terminal SNR, {prediction_type} prediction, float16",
                "NaN or inf",
            )
    out = s.sample(NoisyMixturePredictor(MIXTURE), x.float(), s.grid(schedule, 10), torch.Generator().manual_seed(2))
    require(
        bool(out.sample.isfinite().all()), "finite_at_schedule_ends", "10-step loop, zero terminal SNR", "NaN or inf"
    )
    return passed("finite_at_schedule_ends", "epsilon, sample and v predictions, zero terminal SNR")


def check_config_round_trip(sampler: Any) -> CheckResult:
    """``from_config(json(to_config()))`` is the same class with the same config."""
    config, _ = rebuilt_from_config(_sampler(sampler), "samplers")
    return passed("config_round_trip", config["_class_name"])


def check_works_in_pipeline(sampler: Any) -> CheckResult:
    """A :class:`~thermogen.pipelines.DiffusionPipeline` with this sampler and the exact denoiser of a
    4-pixel mixture makes images in [0, 1], reproducibly under a generator, whose labels follow the mixture."""
    from thermogen.pipelines import DiffusionPipeline
    from thermogen.schedules import OffsetCosineSchedule

    s = _sampler(sampler)
    mixture = GaussianMixture([[-0.8] * 4, [0.8] * 4], [0.1, 0.1], [0.7, 0.3])
    pipe = DiffusionPipeline(NoisyMixturePredictor(mixture), OffsetCosineSchedule(), s)

    def images() -> torch.Tensor:
        gen = torch.Generator().manual_seed(3)
        return pipe(batch_size=400, num_inference_steps=30, generator=gen, output_type="pt", progress=False)[0]

    first = images()
    require(first.shape == (400, 4), "works_in_pipeline", "pipe(batch_size=400)", f"shape {tuple(first.shape)}")
    require(torch.equal(first, images()), "works_in_pipeline", "two calls with one seed", "images differ")
    share = float((first.reshape(400, -1).mean(1) < 0.5).double().mean())  # identity normalizer: x_0 clipped to [0, 1]
    require(abs(share - 0.7) < 0.1, "works_in_pipeline", "share of images from the 0.7-weight mode", f"{share:.3f}")
    return passed("works_in_pipeline", f"mode share {share:.2f} (expected 0.70)")


def check_configuration_only(sampler: Any) -> CheckResult:
    """The sampler is configuration only: two loops run interleaved on one object each equal the loop run
    alone (bitwise), and a whole run leaves the object's attributes unchanged."""
    from thermogen.schedules import OffsetCosineSchedule

    s = _sampler(sampler)
    model, schedule = NoisyMixturePredictor(MIXTURE), OffsetCosineSchedule()
    before = repr(s.__dict__)
    starts = [torch.randn(32, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) for seed in (0, 1)]
    grids = [s.grid(schedule, 8), s.grid(schedule, 5)]
    alone = [
        s.sample(model, x, grid, generator=torch.Generator().manual_seed(10 + k)).sample
        for k, (x, grid) in enumerate(zip(starts, grids))
    ]
    xs, states = list(starts), [s.initial_state(grid) for grid in grids]
    generators = [torch.Generator().manual_seed(10 + k) for k in range(2)]
    for i in range(max(grid.num_steps for grid in grids)):
        for k, grid in enumerate(grids):
            if i < grid.num_steps:
                out = s.solve_step(model.denoise, grid, i, xs[k], states[k], generators[k])
                xs[k], states[k] = out.prev_sample, out.state
    return configuration_only_result(xs, alone, before, s, "loop")


CHECKS = (
    check_reproduces_mixture,
    check_convergence_order,
    check_deterministic_under_generator,
    check_configuration_only,
    check_batch_independence,
    check_dtype_kept,
    check_finite_at_schedule_ends,
    check_config_round_trip,
    check_works_in_pipeline,
)
"""Every diffusion-sampler check, in the order :func:`~thermogen.testing.conformance.run_checks` runs them."""
