"""Sample quality against model evaluations, on an analytic ground truth.

    python benchmarks/sampler_quality.py [--schedule linear] [--samples 20000] [--plot sampler_quality.png]

The data are a 2-D mixture of three Gaussians (std 0.3, weights 0.5/0.3/0.2,
well separated) and the model is its exact noise predictor
(:class:`thermogen.testing.NoisyMixturePredictor`), so every error is the
sampler's. All samplers start from the same x_T (drawn from the exact marginal
at the first time of the grid; within 1/80 of N(0, I)); the distance is the
sliced Wasserstein-2 distance (256 directions) between the samples and an
independent set of true samples from the marginal at the final time (the
mixture itself where the final time is clean data). The noise floor is the
same distance between two independent true sample sets.

Columns are budgets of model evaluations (NFE); each sampler gets as many
steps as fit (Heun: 2 evaluations a step, 1 on a last step to sigma = 0). The
goal: the best sampler at 10 evaluations at or below DDIM's distance at 50.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from thermogen import registry
from thermogen.samplers.ddim import DDIMSampler
from thermogen.samplers.ddpm import DDPMSampler
from thermogen.samplers.diffusion_base import DiffusionSampler
from thermogen.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.euler import EulerSampler
from thermogen.samplers.heun import HeunSampler
from thermogen.testing import GaussianMixture, NoisyMixturePredictor, sliced_wasserstein

MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
BUDGETS = (5, 10, 20, 50)
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
}


class CountingPredictor(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x, noise_level)


def distance(x: torch.Tensor, y: torch.Tensor) -> float:
    return sliced_wasserstein(x, y, num_projections=256, generator=torch.Generator().manual_seed(1))


def steps_within(sampler: DiffusionSampler, schedule: object, budget: int) -> int:
    """The most steps whose model evaluations fit in ``budget``."""
    if not isinstance(sampler, HeunSampler):
        return budget
    steps = 1
    while True:
        grid = sampler.set_timesteps(schedule, steps + 1)
        pairs = zip(grid[:-1], grid[1:])
        if sum(1 + sampler.needs_correction(t, t_prev) for t, t_prev in pairs) > budget:
            return steps
        steps += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", default="linear", help="a registered schedule name")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--plot", type=Path, default=Path(__file__).with_name("sampler_quality.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    schedule = registry.get("schedules", args.schedule)()
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(args.samples, 2, generator=generator, dtype=torch.float64)
    started = time.perf_counter()

    results: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    floors: dict[float, float] = {}
    truth: dict[float, torch.Tensor] = {}
    for name, make in SAMPLERS.items():
        for spacing in SPACINGS:
            row: dict[int, tuple[int, float]] = {}
            for budget in BUDGETS:
                sampler = make(spacing)
                steps = steps_within(sampler, schedule, budget)
                times = sampler.timestep_grid(schedule, steps)
                start, end = (float(schedule.noise_rate(t)) for t in (times[0], times[-1]))
                if end not in truth:
                    target = MIX.noised(end)
                    truth[end] = target.sample(args.samples, torch.Generator().manual_seed(1), torch.float64)
                    floors[end] = distance(target.sample(args.samples, torch.Generator().manual_seed(2),
                                                         torch.float64), truth[end])
                # the same x_T for everyone: the exact marginal at the first time, from one noise tensor
                components = MIX.component_of(MIX.sample(args.samples, torch.Generator().manual_seed(3)))
                a = (1 - start**2) ** 0.5
                x_T = a * MIX.means[components] + (a**2 * MIX.stds[components, None] ** 2 + start**2) ** 0.5 * noise
                model = CountingPredictor(NoisyMixturePredictor(MIX))
                out = sampler.sample(model, x_T, steps, schedule, torch.Generator().manual_seed(4), progress=False)
                row[budget] = (model.calls, distance(out.sample, truth[end]))
            results[(name, spacing)] = row

    print(f"schedule {args.schedule}, {args.samples} samples, sliced W2 to true samples (lower is better)")
    print("noise floor (two true sample sets): " + ", ".join(f"{f:.4f}" for f in sorted(set(floors.values()))))
    print(f"{'sampler':12s} {'spacing':9s} " + " ".join(f"{f'NFE {b}':>14s}" for b in BUDGETS))
    for (name, spacing), row in results.items():
        cells = " ".join(f"{d:8.4f} ({n:>3d})" for n, d in row.values())
        print(f"{name:12s} {spacing:9s} {cells}")
    print("(in parentheses: model evaluations actually used)")

    ddim_default = results[("ddim", "linspace")][50][1]
    ddim_best = min(results[("ddim", s)][50][1] for s in SPACINGS)
    best_key = min(results, key=lambda k: results[k][10][1])
    best = results[best_key][10][1]
    print(f"\nDDIM at 50 NFE: {ddim_default:.4f} (linspace), {ddim_best:.4f} (best spacing)")
    print(f"best at 10 NFE: {best_key[0]} / {best_key[1]}: {best:.4f} -> goal (<= DDIM linspace at 50) "
          f"{'met' if best <= ddim_default else 'not met'}")
    print(f"({time.perf_counter() - started:.0f} s)")
    plot(results, args.plot, args.schedule)


def plot(results: dict[tuple[str, str], dict[int, tuple[int, float]]], path: Path, schedule: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(7, 5))
    for name in SAMPLERS:  # each sampler with its best spacing at 10 NFE
        spacing = min(SPACINGS, key=lambda s: results[(name, s)][10][1])
        row = results[(name, spacing)]
        ax.plot([n for n, _ in row.values()], [d for _, d in row.values()], marker="o", label=f"{name} ({spacing})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("model evaluations")
    ax.set_ylabel("sliced W2 to the true distribution")
    ax.set_title(f"Samplers on a 2-D Gaussian mixture ({schedule} schedule)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
