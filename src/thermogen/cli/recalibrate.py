"""``thermogen recalibrate-bn``: re-estimate a diffusion pipeline's BatchNorm statistics, save a copy."""

from __future__ import annotations

import argparse
from typing import Any

from thermogen.cli.arguments import add_device, add_threads, open_diffusion_pipeline, positive_int
from thermogen.cli.data_arguments import add_data_arguments, training_set


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "recalibrate-bn",
        help="re-estimate the BatchNorm running statistics of a trained diffusion pipeline",
        description="Runs the pipeline's network over noisy training batches (drawn as in training) and "
        "saves a copy whose BatchNorm running means and variances are the plain average over them.",
    )
    parser.add_argument("pipeline", help="pipeline folder, bundled name or Hub repo id")
    parser.add_argument("--out", required=True, help="folder for the recalibrated pipeline")
    add_data_arguments(parser)
    parser.add_argument(
        "--batches", type=positive_int, default=100, help="forward passes to average over (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="images per pass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add_device(parser)
    add_threads(parser)
    parser.set_defaults(run=run_recalibrate)


def run_recalibrate(args: argparse.Namespace) -> int:
    from thermogen.training.batch_norm import recalibrate_batch_norm

    pipeline = open_diffusion_pipeline(args)
    dataset = training_set(args, "diffusion")
    layers = recalibrate_batch_norm(pipeline, dataset, args.batches, args.batch_size, args.seed)
    if layers == 0:
        print(f"{args.pipeline} has no BatchNorm layers; nothing to recalibrate")
        return 0
    pipeline.save_pretrained(args.out)
    print(f"recalibrated {layers} BatchNorm layers over {args.batches} x {args.batch_size} images; wrote {args.out}")
    return 0
