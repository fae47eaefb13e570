"""The book's figures: ``thermogen interpolate``, ``thermogen steps-sweep``, ``thermogen langevin-strip``."""

from __future__ import annotations

import argparse
from typing import Any

from thermogen.cli.arguments import (
    add_device,
    add_no_progress,
    add_out_image,
    add_threads,
    integer,
    positive_int,
)


def register(commands: Any) -> None:
    interpolate = commands.add_parser("interpolate", help="rows of images from interpolated initial noises")
    _pipeline_argument(interpolate, "thermogen/ddim-mnist", "diffusion")
    interpolate.add_argument("--rows", type=positive_int, default=5, help="rows, each between two random noises")
    interpolate.add_argument("--num", type=positive_int, default=11, help="frames per row")
    interpolate.add_argument("--steps", type=positive_int, default=20, help="sampler steps")
    interpolate.add_argument("--method", choices=("book", "slerp"), default="book", help="how the noises are mixed")
    interpolate.add_argument("--seed", type=int, default=100, help="random seed")
    _common(interpolate, "interpolation.png")
    interpolate.set_defaults(run=run_interpolate)

    sweep = commands.add_parser("steps-sweep", help="the same noise sampled with 1..100 steps, one row each")
    _pipeline_argument(sweep, "thermogen/ddim-mnist", "diffusion")
    sweep.add_argument(
        "--steps", type=positive_int_list, default="1,2,3,4,5,20,100", help="comma-separated step counts"
    )
    sweep.add_argument("--n", type=positive_int, default=10, help="images per row")
    sweep.add_argument("--seed", type=int, default=42, help="random seed")
    _common(sweep, "steps_sweep.png")
    sweep.set_defaults(run=run_steps_sweep)

    strip = commands.add_parser("langevin-strip", help="snapshots of Langevin chains from noise (EBM pipelines)")
    _pipeline_argument(strip, "thermogen/ebm-mnist", "EBM")
    strip.add_argument("--n", type=positive_int, default=4, help="chains (rows)")
    strip.add_argument("--steps", type=positive_int, default=1000, help="Langevin steps")
    strip.add_argument(
        "--snapshots", type=step_list, default="0,1,3,5,10,30,50,100,300,999", help="steps to show, comma-separated"
    )
    strip.add_argument("--seed", type=int, default=0, help="random seed")
    _common(strip, "langevin_strip.png")
    strip.set_defaults(run=run_langevin_strip)


def _pipeline_argument(parser: Any, default: str, kind: str) -> None:
    text = f"{kind} pipeline: bundled name, folder or Hub repo"
    parser.add_argument("pipeline", nargs="?", default=default, help=text)


def _common(parser: Any, out: str) -> None:
    add_out_image(parser, out)
    add_device(parser)
    add_threads(parser)
    add_no_progress(parser)


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers ("1,2,20")."""
    return [positive_int(part) for part in text.split(",")]


def step_list(text: str) -> list[int]:
    """argparse type: comma-separated step indices >= 0 ("0,1,999")."""
    steps = [integer(part) for part in text.split(",")]
    for value in steps:
        if value < 0:
            raise argparse.ArgumentTypeError(f"{value} is not a step index >= 0")
    return steps


def run_interpolate(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = DiffusionPipeline.from_pretrained(args.pipeline, device=args.device)
    pipeline.progress = not args.no_progress
    generator = torch.Generator().manual_seed(args.seed)  # noise drawn on the CPU: the same on every device
    shape = (1, *pipeline.sample_shape())
    rows = []
    for _ in range(args.rows):
        a = torch.randn(shape, generator=generator)[0]
        b = torch.randn(shape, generator=generator)[0]
        rows.append(pipeline.interpolate(a, b, num=args.num, num_inference_steps=args.steps, method=args.method).images)
    path = save_grid(torch.cat(rows), args.out, nrow=args.num)
    print(f"wrote {path}")
    return 0


def run_steps_sweep(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = DiffusionPipeline.from_pretrained(args.pipeline, device=args.device)
    pipeline.progress = not args.no_progress
    rows = pipeline.steps_sweep(args.steps, batch_size=args.n, seed=args.seed)
    path = save_grid(torch.cat([rows[s] for s in args.steps]), args.out, nrow=args.n)
    print(f"wrote {path} (rows: {', '.join(map(str, args.steps))} steps)")
    return 0


def run_langevin_strip(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = EBMPipeline.from_pretrained(args.pipeline, device=args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    out = pipeline(
        batch_size=args.n,
        num_inference_steps=args.steps,
        generator=generator,
        snapshot_steps=args.snapshots,
        output_type="tensor",
        progress=not args.no_progress,
    )
    frames = out.snapshots  # (K, B, C, H, W) in [0, 1]
    assert frames is not None  # snapshot_steps were given
    grid = frames.transpose(0, 1).reshape(-1, *frames.shape[2:])
    path = save_grid(grid, args.out, nrow=len(args.snapshots))
    print(f"wrote {path} (steps {', '.join(map(str, args.snapshots))})")
    return 0
