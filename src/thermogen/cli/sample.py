"""``thermogen sample``: a grid of images from any pipeline (bundled name, folder or Hub repo)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    sample = commands.add_parser("sample", help="generate a PNG grid from a pipeline")
    sample.add_argument(
        "pipeline", nargs="?", default="thermogen/ddim-mnist", help="bundled name, folder or Hub repo id"
    )
    sample.add_argument("--n", type=int, default=64, help="number of images")
    sample.add_argument(
        "--steps", type=int, default=None, help="sampler steps (default: 20 diffusion, pipeline's chain for EBM)"
    )
    sample.add_argument("--sampler", default=None, help="swap in another registered sampler")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--nrow", type=int, default=8, help="images per row")
    sample.add_argument("--out", default="samples.png", help="PNG to write")
    sample.add_argument("--device", default="cpu")
    sample.add_argument("--no-progress", action="store_true")
    sample.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.images import save_grid

    overrides = {"sampler": args.sampler} if args.sampler else {}
    pipeline = Pipeline.from_pretrained(args.pipeline, **overrides).to(args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    progress = not args.no_progress
    if isinstance(pipeline, DiffusionPipeline):
        images = pipeline(
            batch_size=args.n,
            num_inference_steps=args.steps or 20,
            generator=generator,
            output_type="tensor",
            progress=progress,
        ).images
    else:
        images = pipeline(
            batch_size=args.n, steps=args.steps, generator=generator, output_type="tensor", progress=progress
        ).images
    path = save_grid(images, args.out, nrow=args.nrow)
    print(f"wrote {path} ({args.n} images from {args.pipeline})")
    return 0
