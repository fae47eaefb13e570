"""``thermogen recalibrate-bn``: re-estimate a diffusion pipeline's BatchNorm statistics, save a copy."""

from __future__ import annotations

import argparse
from typing import Any

from thermogen.cli.arguments import add_device, positive_int
from thermogen.cli.train import data_arguments, load_dataset


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "recalibrate-bn",
        help="re-estimate the BatchNorm running statistics of a trained diffusion pipeline",
        description="Runs the pipeline's network over noisy training batches (drawn as in training) and "
        "saves a copy whose BatchNorm running means and variances are the plain average over them.",
    )
    parser.add_argument("pipeline", help="pipeline folder, bundled name or Hub repo id")
    parser.add_argument("--out", required=True, help="folder for the recalibrated pipeline")
    data_arguments(parser)
    parser.add_argument(
        "--batches", type=positive_int, default=100, help="forward passes to average over (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=64, help="images per pass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    add_device(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.set_defaults(run=run_recalibrate)


def run_recalibrate(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.training.batch_norm import recalibrate_batch_norm

    if args.threads:
        torch.set_num_threads(args.threads)
    pipeline = Pipeline.from_pretrained(args.pipeline).to(args.device)
    if not isinstance(pipeline, DiffusionPipeline):
        raise ValueError(f"{args.pipeline} is a {type(pipeline).__name__}; expected a diffusion pipeline")
    dataset = load_dataset(args, "diffusion")
    layers = recalibrate_batch_norm(pipeline, dataset, args.batches, args.batch_size, args.seed)
    if layers == 0:
        print(f"{args.pipeline} has no BatchNorm layers; nothing to recalibrate")
        return 0
    pipeline.save_pretrained(args.out)
    print(f"recalibrated {layers} BatchNorm layers over {args.batches} x {args.batch_size} images; wrote {args.out}")
    return 0
