"""Microseconds per sampler step with a free model (the model output is given), next to diffusers' DDIM.

    python benchmarks/step_overhead.py [--steps 50] [--repeats 5]

For each sample shape, every sampler runs a whole loop of ``--steps`` steps on
the ``linear`` schedule (T = 1000) with a fixed epsilon output; the figure is
the best of ``--repeats`` loops divided by the number of steps. A step is the
diffusers-style one: ``denoised_from_output`` (what ``model.denoise`` adds to a
network call: the (x0^, eps^) pair, which diffusers' ``step`` computes inside)
then ``sampler.step(denoised, grid, i, x, state)``; Heun, which has no
single-evaluation ``step``, runs ``solve_step`` with that free denoiser (two
evaluations per step). So the figure includes the per-step host work (reading
the grid's rates and the planned coefficients) and the tensor passes.
``sampler.grid`` + ``sampler.initial_state`` (once per loop: the grid's rates
and, for UniPC, iPNDM and DEIS, the per-step coefficients) are timed on their
own; every timed loop starts from the same initial state (a value). diffusers'
``DDIMScheduler.step`` (with ``clip_sample=False``, which thermogen's DDIM also
defaults to) is timed the same way when diffusers is installed; ratios are thermogen / diffusers.

``--forms`` also times the ways eager PyTorch can compute one 5-term weighted sum
(the update of an order-4 step: the sample and four estimates) next to DDIM's
2-term update: the in-place chain thermogen uses, one ``stack`` + ``tensordot``,
and with ``--compile`` one ``torch.compile``-fused kernel (needs a C++ compiler).

Goals: thermogen's DDIM at most 1/3 of diffusers' time per step on the tiny
(1, 2) tensor (host overhead) and at most 0.7x on the (64, 3, 64, 64) batch
(passes over memory). Runs on one CPU thread (``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import Tensor

from thermogen.parameterisation import Denoised, denoised_from_output
from thermogen.samplers.diffusion.adams import DEISSampler, IPNDMSampler
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.heun import HeunSampler
from thermogen.samplers.diffusion.multistep import linear_combination
from thermogen.samplers.diffusion.unipc import UniPCSampler
from thermogen.schedules import LinearSchedule

SHAPES = [(1, 2), (64, 1, 32, 32), (64, 3, 64, 64)]
SAMPLERS: dict[str, Callable[[], DiffusionSampler]] = {
    "ddim": DDIMSampler,
    "ddim eta=1": lambda: DDIMSampler(eta=1.0),
    "ddpm": DDPMSampler,
    "dpmpp_2m": DPMSolverPP2M,
    "dpmpp_3m": DPMSolverPP3M,
    "euler": EulerSampler,
    "euler eta=1": lambda: EulerSampler(eta=1.0),
    "heun (solve_step, 2 evals)": HeunSampler,
    "unipc": UniPCSampler,
    "ipndm": IPNDMSampler,
    "deis": DEISSampler,
}


def best_loop(run: Callable[[], None], repeats: int) -> float:
    run()  # warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def thermogen_loop(make: Callable[[], DiffusionSampler], shape: tuple[int, ...], steps: int) -> Callable[[], None]:
    schedule = LinearSchedule()
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    model_output = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    sampler = make()
    generator = torch.Generator().manual_seed(2)
    grid = sampler.grid(schedule, steps)  # once per loop, outside the steps (timed separately) ...
    initial = sampler.initial_state(grid)  # ... and a value: every loop starts from it

    def denoiser(x: Tensor, signal_rate: float, noise_rate: float) -> Denoised:  # a free epsilon model
        return denoised_from_output(model_output, "epsilon", x, signal_rate, noise_rate)

    def run() -> None:
        x, state = x_T, initial
        for i in range(steps):
            out = sampler.step(denoiser(x, *grid.rates(i)), grid, i, x, state, generator=generator)
            x, state = out.prev_sample, out.state

    def run_solver() -> None:
        x, state = x_T, initial
        for i in range(steps):
            out = sampler.solve_step(denoiser, grid, i, x, state, generator=generator)
            x, state = out.prev_sample, out.state

    return run if sampler.evaluations_per_step == 1 else run_solver


def grid_and_state_us(make: Callable[[], DiffusionSampler], steps: int, repeats: int) -> float:
    sampler, schedule = make(), LinearSchedule()
    return best_loop(lambda: sampler.initial_state(sampler.grid(schedule, steps)), repeats) * 1e6


def diffusers_loop(shape: tuple[int, ...], steps: int) -> Callable[[], None] | None:
    try:
        from diffusers import DDIMScheduler
    except ImportError:
        return None
    scheduler = DDIMScheduler(beta_schedule="linear", clip_sample=False, timestep_spacing="linspace")
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    model_output = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    scheduler.set_timesteps(steps)
    timesteps = list(scheduler.timesteps)

    def run() -> None:
        x = x_T
        for t in timesteps:
            x = scheduler.step(model_output, t, x).prev_sample

    return run


def combination_forms(shape: tuple[int, ...], compile_too: bool) -> dict[str, float]:
    """Microseconds (best of 5 runs of many calls) of each form of ``sum_i w_i t_i`` for 5 terms, and DDIM's update."""
    terms = [torch.randn(shape, generator=torch.Generator().manual_seed(i)) for i in range(5)]
    weights = [0.9, 0.1, -0.2, 0.3, -0.05]
    forms: dict[str, Callable[[], Tensor]] = {
        "DDIM update a x0 + b eps (2 terms)": lambda: weights[0] * terms[0] + weights[1] * terms[1],
        "5 terms, in-place chain (thermogen)": lambda: linear_combination(terms, weights),
        "5 terms, stack + tensordot": lambda: torch.tensordot(
            torch.tensor(weights, dtype=terms[0].dtype), torch.stack(terms), dims=1
        ),
    }
    if compile_too:
        fused = torch.compile(lambda t, w: sum(wi * ti for wi, ti in zip(w, t)), dynamic=False)
        forms["5 terms, torch.compile"] = lambda: fused(terms, weights)
    calls = 2000 if len(shape) == 2 else 200

    def many(form: Callable[[], Tensor]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                form()

        return run

    return {name: best_loop(many(form), 5) / calls * 1e6 for name, form in forms.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--forms", action="store_true", help="also time the forms of a 5-term weighted sum")
    parser.add_argument("--compile", action="store_true", help="with --forms: include a torch.compile-fused sum")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.steps} steps per loop, best of {args.repeats} loops\n")
    print(f"grid + initial_state (host, once per loop; {args.steps} steps):")
    for name, make in SAMPLERS.items():
        print(f"  {name:26s} {grid_and_state_us(make, args.steps, args.repeats):10.1f} us")
    print()
    for shape in SHAPES:
        repeats = args.repeats * (20 if shape == (1, 2) else 1)
        reference = diffusers_loop(shape, args.steps)
        diffusers_us = None
        if reference is not None:
            diffusers_us = best_loop(reference, repeats) / args.steps * 1e6
        print(f"shape {shape}:")
        header = f"  {'sampler':26s} {'us/step':>10s}"
        print(header + (f" {'/ diffusers DDIM':>17s}" if diffusers_us else ""))
        if diffusers_us is not None:
            print(f"  {'diffusers DDIMScheduler':26s} {diffusers_us:10.1f} {1.0:17.2f}")
        for name, make in SAMPLERS.items():
            ours = best_loop(thermogen_loop(make, shape, args.steps), repeats) / args.steps * 1e6
            ratio = f" {ours / diffusers_us:17.2f}" if diffusers_us else ""
            print(f"  {name:26s} {ours:10.1f}{ratio}")
        print()
    if args.forms:
        for shape in SHAPES[:2]:
            print(f"one weighted sum, shape {shape} (us per call):")
            for name, us in combination_forms(shape, args.compile).items():
                print(f"  {name:38s} {us:8.2f}")
            print()


if __name__ == "__main__":
    main()
