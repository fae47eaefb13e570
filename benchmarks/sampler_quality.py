"""Sample quality against model evaluations, on an analytic ground truth.

    python benchmarks/sampler_quality.py [--mixture three_modes] [--schedule linear] [--samples 8000] [--plot PATH]

Data: one of :data:`thermogen.testing.MIXTURES` (2-D: ``three_modes``, std 0.3,
weights 0.5/0.3/0.2; ``ring8``, eight thin modes on a circle; ``unequal``, four
modes of unequal weights and stds 0.25 down to 0.03); model: its exact noise
predictor (:class:`thermogen.testing.NoisyMixturePredictor`), so every error is
the sampler's. Each sampler x spacing gets as many steps as fit in a budget of
model evaluations (NFE; Heun uses 2 per step, 1 on a last step to sigma = 0).

Two measures:

1. Distribution distance: sliced Wasserstein-2 (256 directions) between the
   samples and true samples of the marginal at the final time (the mixture
   itself when the final time is clean data). x_T is N(0, I) whatever time a
   grid starts at, as a pipeline draws it, so a grid that starts below t = 1
   pays for the mismatch. To see sampler errors below the sampling noise, x_T
   and the true set are quasi-random (scrambled Sobol normals, components of the
   true set in exact proportions); "QMC floor" is the distance
   between two such true sets, "iid floor" between two i.i.d. sets, which is
   the best a stochastic sampler (DDPM, eta = 1) can show.
2. ODE error (deterministic samplers): the mean distance, sample by sample,
   to the exact probability-flow solution from the same x_T (DPM-Solver++ 3M,
   500 steps uniform in log-SNR): the discretisation error without sampling
   noise. (The mean rather than the RMS: a few samples near a boundary
   between modes flip to another mode and would dominate an RMS.)

Goals: the best sampler at 10 evaluations at or below DDIM's error at 50, at 6 below DDIM's at 20.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from thermogen import registry
from thermogen.interfaces import NoisePredictor, NoiseSchedule
from thermogen.parameterisation import Denoised
from thermogen.samplers.diffusion.adams import DEISSampler, IPNDMSampler
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.heun import HeunSampler
from thermogen.samplers.diffusion.tuning import fit_timesteps, reference_solution, with_timesteps
from thermogen.samplers.diffusion.unipc import UniPCSampler
from thermogen.testing import MIXTURES, GaussianMixture, NoisyMixturePredictor, sliced_wasserstein

BUDGETS = (5, 6, 10, 20, 50)
SPACINGS = ("leading", "trailing", "linspace", "uniform", "log_snr", "karras")
SAMPLERS: dict[str, Callable[[str], DiffusionSampler]] = {
    "ddim": lambda spacing: DDIMSampler(spacing=spacing),
    "ddim eta=1": lambda spacing: DDIMSampler(eta=1.0, spacing=spacing),
    "ddpm": lambda spacing: DDPMSampler(spacing=spacing),
    "dpmpp_2m": lambda spacing: DPMSolverPP2M(spacing=spacing),
    "dpmpp_3m": lambda spacing: DPMSolverPP3M(spacing=spacing),
    "euler": lambda spacing: EulerSampler(spacing=spacing),
    "euler eta=1": lambda spacing: EulerSampler(eta=1.0, spacing=spacing),
    "heun": lambda spacing: HeunSampler(spacing=spacing),
    "unipc": lambda spacing: UniPCSampler(spacing=spacing),
    "unipc bh1": lambda spacing: UniPCSampler(variant="bh1", spacing=spacing),
    "ipndm": lambda spacing: IPNDMSampler(spacing=spacing),
    "deis": lambda spacing: DEISSampler(spacing=spacing),
}
STOCHASTIC = ("ddim eta=1", "ddpm", "euler eta=1")
FITTED = ("dpmpp_3m", "unipc", "ipndm", "deis")
FITTED_BUDGETS = (5, 6, 10)
REFERENCE_STEPS = 500


class CountingDenoiser:
    """A denoiser (``model.denoise``) that counts its calls: the model evaluations of a loop."""

    def __init__(self, model: NoisePredictor) -> None:
        self.model = model
        self.calls = 0

    def __call__(self, x: Tensor, signal_rate: float, noise_rate: float) -> Denoised:
        self.calls += 1
        return self.model.denoise(x, signal_rate, noise_rate)


def fine_ode_grid(schedule: NoiseSchedule, start: float, num_steps: int) -> TimeGrid:
    """The reference grid: uniform in log-SNR from ``start`` down to the schedule's first step, then to t = 0."""
    train_steps = getattr(schedule, "num_train_timesteps", None)
    last = 1.0 / train_steps if train_steps else 1e-3
    lam = torch.linspace(float(schedule.log_snr(start)), float(schedule.log_snr(last)), num_steps, dtype=torch.float64)
    times = torch.cat([schedule.time_from_log_snr(lam), torch.zeros(1, dtype=torch.float64)])
    times[0] = start
    return TimeGrid.from_times(schedule, times)


def fine_ode(model: NoisePredictor, schedule: NoiseSchedule, x_T: Tensor, start: float) -> Tensor:
    """The exact probability-flow solution from ``x_T`` at ``start``: DPM-Solver++ 3M on :func:`fine_ode_grid`."""
    grid = fine_ode_grid(schedule, start, REFERENCE_STEPS)
    return DPMSolverPP3M(spacing="log_snr").sample(model, x_T, grid).sample


def qmc_normal(n: int, seed: int) -> Tensor:
    u = torch.quasirandom.SobolEngine(2, scramble=True, seed=seed).draw(n, dtype=torch.float64)
    return math.sqrt(2.0) * torch.erfinv((2.0 * u - 1.0).clamp(-1 + 1e-15, 1 - 1e-15))


def qmc_mixture(mixture: GaussianMixture, n: int, seed: int) -> Tensor:
    """n points of ``mixture``: components in exact proportions, Sobol normals within."""
    counts = (mixture.weights * n).round().long()
    counts[-1] = n - counts[:-1].sum()
    component = torch.repeat_interleave(torch.arange(mixture.num_components), counts)
    return mixture.means[component] + mixture.stds[component, None] * qmc_normal(n, seed)


def distance(x: Tensor, y: Tensor) -> float:
    return sliced_wasserstein(x, y, num_projections=256, generator=torch.Generator().manual_seed(1))


def evaluations(sampler: DiffusionSampler, grid: TimeGrid) -> int:
    """The model evaluations of a loop over ``grid``, counted on a one-sample run with a free denoiser."""
    calls = 0

    def free(x: Tensor, signal_rate: float, noise_rate: float) -> Denoised:
        nonlocal calls
        calls += 1
        return Denoised(x0=x, eps=torch.zeros_like(x))

    sampler.sample(free, torch.zeros(1, 2, dtype=torch.float64), grid)
    return calls


def steps_within(sampler: DiffusionSampler, schedule: NoiseSchedule, budget: int) -> int:
    """The most steps whose model evaluations fit in ``budget``."""
    if sampler.evaluations_per_step == 1:
        return budget
    steps = 1
    while evaluations(sampler, sampler.grid(schedule, steps + 1)) <= budget:
        steps += 1
    return steps


Results = dict[tuple[str, str], dict[int, tuple[int, float, float]]]


def measure(
    mixture: GaussianMixture,
    schedule: NoiseSchedule,
    n: int,
    samplers: dict[str, Callable[[str], DiffusionSampler]] = SAMPLERS,
    spacings: tuple[str, ...] = SPACINGS,
    budgets: tuple[int, ...] = BUDGETS,
) -> tuple[Results, dict[str, float]]:
    """``{(sampler, spacing): {budget: (NFE used, sliced W2, ODE error)}}`` and the QMC / iid floors."""
    predictor = NoisyMixturePredictor(mixture)
    model = CountingDenoiser(predictor)
    x_T_by_start: dict[float, Tensor] = {}
    exact_by_start: dict[float, Tensor] = {}
    truth: dict[float, Tensor] = {}
    floors: dict[str, float] = {}

    def x_T_at(start: float) -> Tensor:  # N(0, I) at any start time, as a pipeline draws it
        if start not in x_T_by_start:
            x_T_by_start[start] = qmc_normal(n, seed=7)
            exact_by_start[start] = fine_ode(predictor, schedule, x_T_by_start[start], start)
        return x_T_by_start[start]

    def true_set(end: float) -> Tensor:
        if end not in truth:
            target = mixture.noised(float(schedule.noise_rate(end)))
            truth[end] = qmc_mixture(target, n, seed=1)
            floors.setdefault("QMC", distance(qmc_mixture(target, n, seed=2), truth[end]))
            iid = [target.sample(n, torch.Generator().manual_seed(s), torch.float64) for s in (1, 2)]
            floors.setdefault("iid", distance(*iid))
        return truth[end]

    results: Results = {}
    for name, make in samplers.items():
        for spacing in spacings:
            row = {}
            for budget in budgets:
                sampler = make(spacing)
                grid = sampler.grid(schedule, steps_within(sampler, schedule, budget))
                start, end = grid.times[0], grid.times[-1]
                x_T = x_T_at(start)
                model.calls = 0
                out = sampler.sample(model, x_T, grid, torch.Generator().manual_seed(4))
                ode_error = float((out.sample - exact_by_start[start]).norm(dim=1).mean())
                row[budget] = (model.calls, distance(out.sample, true_set(end)), ode_error)
            results[(name, spacing)] = row
    return results, floors


def measure_fitted(
    mixture: GaussianMixture, schedule: NoiseSchedule, n: int, budgets: tuple[int, ...] = FITTED_BUDGETS
) -> Results:
    """Rows ``(sampler, "fitted")``: grids fitted by :func:`fit_timesteps` to 256 other draws of x_T, then measured."""
    model = NoisyMixturePredictor(mixture)
    fit_x = torch.randn(256, 2, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    fit_reference = reference_solution(model, schedule, fit_x, 200)
    x_T = qmc_normal(n, seed=7)
    exact = reference_solution(model, schedule, x_T, REFERENCE_STEPS)
    truth = qmc_mixture(mixture.noised(float(schedule.noise_rate(0.0))), n, seed=1)
    results: Results = {}
    for name in FITTED:
        row = {}
        for budget in budgets:
            sampler = SAMPLERS[name]("log_snr")
            fitted = fit_timesteps(model, schedule, sampler, budget, fit_x, fit_reference)
            tuned = with_timesteps(sampler, fitted.timesteps)
            out = tuned.sample(model, x_T, tuned.grid(schedule, budget))
            row[budget] = (budget, distance(out.sample, truth), float((out.sample - exact).norm(dim=1).mean()))
        results[(name, "fitted")] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixture", default="three_modes", choices=sorted(MIXTURES))
    parser.add_argument("--schedule", default="linear", help="a registered schedule name")
    parser.add_argument("--samples", type=int, default=8000)
    parser.add_argument("--plot", type=Path, default=Path(__file__).with_name("sampler_quality.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    schedule = registry.get("schedules", args.schedule)()
    results, floors = measure(MIXTURES[args.mixture](), schedule, args.samples)
    if schedule.rates64(torch.zeros(1, dtype=torch.float64))[1].item() == 0.0:  # fitted grids end at clean data
        fitted = measure_fitted(MIXTURES[args.mixture](), schedule, args.samples)
    else:
        fitted = {}

    print(f"mixture {args.mixture}, schedule {args.schedule}, {args.samples} samples; ", end="")
    print(f"QMC floor {floors['QMC']:.4f}, iid floor {floors['iid']:.4f}")
    print("\n1. sliced W2 to the true distribution (NFE used in parentheses)")
    print(f"{'sampler':12s} {'spacing':9s} " + " ".join(f"{f'NFE {b}':>14s}" for b in BUDGETS))
    for (name, spacing), row in results.items():
        print(f"{name:12s} {spacing:9s} " + " ".join(f"{d:8.4f} ({c:>3d})" for c, d, _ in row.values()))
    print("\n2. mean error to the exact ODE solution from the same x_T (deterministic samplers)")
    print(f"{'sampler':12s} {'spacing':9s} " + " ".join(f"{f'NFE {b}':>9s}" for b in BUDGETS))
    for (name, spacing), row in results.items():
        if name not in STOCHASTIC:
            print(f"{name:12s} {spacing:9s} " + " ".join(f"{e:9.4f}" for _, _, e in row.values()))

    if fitted:
        print("\n3. grids fitted to 256 other draws (thermogen.samplers.diffusion.tuning): sliced W2 / ODE error")
        print(f"{'sampler':12s} " + " ".join(f"{f'NFE {b}':>15s}" for b in FITTED_BUDGETS))
        for (name, _), row in fitted.items():
            print(f"{name:12s} " + " ".join(f"{d:7.4f}/{e:7.4f}" for _, d, e in row.values()))
        for few, many in ((10, 50), (6, 20)):
            best_name = min(fitted, key=lambda k: fitted[k][few][1])
            value, ddim = fitted[best_name][few][1], results[("ddim", "linspace")][many][1]
            verdict = "met" if value <= ddim else "not met"
            print(f"  fitted, sliced W2: DDIM@{many} {ddim:.4f}; best@{few} {best_name[0]} {value:.4f} -> {verdict}")
    print("\ngoals: best at 10 NFE <= DDIM (linspace) at 50 NFE; best at 6 NFE < DDIM (linspace) at 20 NFE")
    for few, many in ((10, 50), (6, 20)):
        for label, index in (("sliced W2", 1), ("ODE error", 2)):
            keys = [k for k in results if index == 1 or k[0] not in STOCHASTIC]
            ddim = results[("ddim", "linspace")][many][index]
            best = min(keys, key=lambda k: results[k][few][index])
            value = results[best][few][index]
            verdict = "met" if value <= ddim else "not met"
            print(f"  {label}: DDIM@{many} {ddim:.4f}; best@{few} {best[0]} / {best[1]} {value:.4f} -> {verdict}")
    print("\nbest spacing of each sampler at 10 NFE (sliced W2):")
    for name in SAMPLERS:
        spacing = min(SPACINGS, key=lambda sp: results[(name, sp)][10][1])
        print(f"  {name:12s} {spacing:9s} {results[(name, spacing)][10][1]:.4f}")
    print(f"({time.perf_counter() - started:.0f} s)")
    plot(results, args.plot, f"{args.mixture}, {args.schedule}")


def plot(results: Results, path: Path, title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for name in SAMPLERS:  # each sampler with its best spacing at 10 NFE
        spacing = min(SPACINGS, key=lambda s: results[(name, s)][10][1])
        row = list(results[(name, spacing)].values())
        axes[0].plot([c for c, _, _ in row], [d for _, d, _ in row], marker="o", label=f"{name} ({spacing})")
        if name not in STOCHASTIC:
            spacing = min(SPACINGS, key=lambda s: results[(name, s)][10][2])
            row = list(results[(name, spacing)].values())
            axes[1].plot([c for c, _, _ in row], [e for _, _, e in row], marker="o", label=f"{name} ({spacing})")
    for ax, label in zip(axes, ("sliced W2 to the true distribution", "mean error to the exact ODE solution")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model evaluations")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(f"Samplers on a 2-D Gaussian mixture ({title}; best spacing each)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
