"""``thermogen tune-steps``: fit a diffusion pipeline's time grid for a budget of model evaluations.

Draws ``--batch`` initial noises, solves each finely (:func:`thermogen.samplers.diffusion.tuning.reference_solution`),
fits the ``--nfe`` visited times of the sampler to those solutions
(:func:`thermogen.samplers.diffusion.tuning.fit_timesteps`) and, with ``--out``, saves a
copy of the pipeline whose sampler has ``spacing="custom"`` and the fitted
``timesteps``: sample it with ``num_inference_steps=NFE`` (``--steps NFE``).
No training data is needed.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from thermogen.cli.arguments import add_device, add_no_progress, add_threads, open_diffusion_pipeline, positive_int


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "tune-steps",
        help="fit the sampler's time grid of a diffusion pipeline for N model evaluations",
        description="Chooses the N times the sampler visits by minimising the distance of a batch of "
        "trajectories' results to fine-grid solutions from the same noise; saves them as a custom spacing.",
    )
    parser.add_argument("pipeline", help="pipeline folder, bundled name or Hub repo id")
    parser.add_argument("--nfe", type=positive_int, required=True, help="model evaluations (= sampler steps)")
    parser.add_argument(
        "--sampler", default=None, help="swap in another registered sampler (keeping the options it shares)"
    )
    parser.add_argument("--out", default=None, help="folder for the pipeline with the fitted grid")
    parser.add_argument("--batch", type=positive_int, default=256, help="trajectories the fit measures")
    parser.add_argument("--reference-steps", type=positive_int, default=100, help="steps of the fine reference solver")
    parser.add_argument("--sweeps", type=positive_int, default=8, help="coordinate-descent passes over the times")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noises")
    parser.add_argument(
        "--distance",
        choices=("samples", "mnist-features"),
        default="samples",
        help="where the distance to the reference is measured: between the samples, or between the bundled "
        "MNIST classifier's features of the images (for 1 x 28 x 28 or 1 x 32 x 32 digits; tracks FD better)",
    )
    add_device(parser)
    add_no_progress(parser)
    add_threads(parser)
    parser.set_defaults(run=run_tune_steps)


def run_tune_steps(args: argparse.Namespace) -> int:
    import torch

    from thermogen.mnist import feature_embedding
    from thermogen.samplers.diffusion.tuning import fit_timesteps, reference_solution, with_timesteps

    pipeline = open_diffusion_pipeline(args, **({"sampler": args.sampler} if args.sampler else {}))
    pipeline.model.eval()
    start = time.perf_counter()
    x_T = pipeline.make_noise(args.batch, torch.Generator(device=args.device).manual_seed(args.seed))
    reference = reference_solution(pipeline.model, pipeline.schedule, x_T, args.reference_steps)
    fitted = fit_timesteps(
        pipeline.model,
        pipeline.schedule,
        pipeline.sampler,
        args.nfe,
        x_T,
        reference,
        args.sweeps,
        progress=None if args.no_progress else print,
        embed=feature_embedding(pipeline.normalizer) if args.distance == "mnist-features" else None,
    )
    seconds = time.perf_counter() - start
    sampler = with_timesteps(pipeline.sampler, fitted.timesteps)
    print(
        f"{type(sampler).__name__}, {args.nfe} evaluations: distance to the reference "
        f"{fitted.initial_distance:.4f} (best fixed spacing, {fitted.initial_spacing}) -> "
        f"{fitted.distance:.4f} (fitted), "
        f"{fitted.sampling_runs} sampling runs of {args.batch} in {seconds:.0f} s"
    )
    print("timesteps:", json.dumps([round(t, 6) for t in fitted.timesteps]))
    if args.out:
        pipeline.sampler = sampler
        pipeline.save_pretrained(args.out)
        print(f"wrote {args.out} (sample with {args.nfe} steps)")
    return 0
