"""The book's figures: ``thermogen interpolate``, ``thermogen steps-sweep``, ``thermogen langevin-strip``."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    interpolate = commands.add_parser("interpolate", help="rows of images from interpolated initial noises")
    interpolate.add_argument("pipeline", nargs="?", default="thermogen/ddim-mnist")
    interpolate.add_argument("--rows", type=int, default=5)
    interpolate.add_argument("--num", type=int, default=11, help="frames per row")
    interpolate.add_argument("--steps", type=int, default=20)
    interpolate.add_argument("--method", choices=("book", "slerp"), default="book")
    interpolate.add_argument("--seed", type=int, default=100)
    interpolate.add_argument("--out", default="interpolation.png")
    interpolate.set_defaults(run=run_interpolate)

    sweep = commands.add_parser("steps-sweep", help="the same noise sampled with 1..100 steps, one row each")
    sweep.add_argument("pipeline", nargs="?", default="thermogen/ddim-mnist")
    sweep.add_argument("--steps", default="1,2,3,4,5,20,100", help="comma-separated step counts")
    sweep.add_argument("--n", type=int, default=10, help="images per row")
    sweep.add_argument("--seed", type=int, default=42)
    sweep.add_argument("--out", default="steps_sweep.png")
    sweep.set_defaults(run=run_steps_sweep)

    strip = commands.add_parser("langevin-strip", help="snapshots of Langevin chains from noise (EBM pipelines)")
    strip.add_argument("pipeline", nargs="?", default="thermogen/ebm-mnist")
    strip.add_argument("--n", type=int, default=4, help="chains (rows)")
    strip.add_argument("--steps", type=int, default=1000)
    strip.add_argument("--snapshots", default="0,1,3,5,10,30,50,100,300,999")
    strip.add_argument("--seed", type=int, default=0)
    strip.add_argument("--out", default="langevin_strip.png")
    strip.set_defaults(run=run_langevin_strip)


def run_interpolate(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = DiffusionPipeline.from_pretrained(args.pipeline)
    generator = torch.Generator().manual_seed(args.seed)
    rows = []
    for _ in range(args.rows):
        a = pipeline.make_noise(1, generator)[0]
        b = pipeline.make_noise(1, generator)[0]
        rows.append(pipeline.interpolate(a, b, num=args.num, num_inference_steps=args.steps, method=args.method).images)
    path = save_grid(torch.cat(rows), args.out, nrow=args.num)
    print(f"wrote {path}")
    return 0


def run_steps_sweep(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = DiffusionPipeline.from_pretrained(args.pipeline)
    pipeline.progress = False
    steps = [int(s) for s in args.steps.split(",")]
    rows = pipeline.steps_sweep(steps, batch_size=args.n, seed=args.seed)
    path = save_grid(torch.cat([rows[s] for s in steps]), args.out, nrow=args.n)
    print(f"wrote {path} (rows: {', '.join(map(str, steps))} steps)")
    return 0


def run_langevin_strip(args: argparse.Namespace) -> int:
    import torch

    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.pipelines.images import save_grid

    pipeline = EBMPipeline.from_pretrained(args.pipeline)
    snapshot_steps = [int(s) for s in args.snapshots.split(",")]
    generator = torch.Generator().manual_seed(args.seed)
    out = pipeline(
        batch_size=args.n, steps=args.steps, generator=generator, snapshot_steps=snapshot_steps, output_type="tensor"
    )
    frames = out.snapshots  # (K, B, C, H, W) in [0, 1]
    assert frames is not None  # snapshot_steps were given
    grid = frames.transpose(0, 1).reshape(-1, *frames.shape[2:])
    path = save_grid(grid, args.out, nrow=len(snapshot_steps))
    print(f"wrote {path} (steps {args.snapshots})")
    return 0
