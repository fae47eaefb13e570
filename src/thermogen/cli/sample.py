"""``thermogen sample``: a grid of images from any pipeline (bundled name, folder or Hub repo)."""

from __future__ import annotations

import argparse
from typing import Any

from thermogen.cli.arguments import add_device, add_no_progress, add_out_image, add_threads, positive_int


def register(commands: Any) -> None:
    sample = commands.add_parser("sample", help="generate a PNG grid from a pipeline")
    sample.add_argument(
        "pipeline", nargs="?", default="thermogen/ddim-mnist", help="bundled name, folder or Hub repo id"
    )
    sample.add_argument("--n", type=positive_int, default=64, help="number of images (default: %(default)s)")
    sample.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="sampler steps (default: 20 for diffusion, the pipeline's chain length for EBM)",
    )
    sample.add_argument("--sampler", default=None, help="swap in another registered sampler (default: the pipeline's)")
    sample.add_argument(
        "--eta",
        type=float,
        default=None,
        help="stochasticity of samplers that have it (ddim, euler) (default: the sampler's own)",
    )
    sample.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    sample.add_argument("--nrow", type=positive_int, default=8, help="images per row (default: %(default)s)")
    add_out_image(sample, "samples.png")
    add_device(sample)
    add_threads(sample)
    add_no_progress(sample)
    sample.set_defaults(run=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.images import save_grid

    overrides = {"sampler": args.sampler} if args.sampler else {}
    pipeline = Pipeline.from_pretrained(args.pipeline, **overrides).to(args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    sampler_options = {} if args.eta is None else {"eta": args.eta}  # a pipeline without eta says so
    images = pipeline(
        batch_size=args.n,
        num_inference_steps=args.steps,
        generator=generator,
        output_type="tensor",
        progress=not args.no_progress,
        **sampler_options,
    ).images
    path = save_grid(images, args.out, nrow=args.nrow)
    print(f"wrote {path} ({args.n} images from {args.pipeline})")
    return 0
