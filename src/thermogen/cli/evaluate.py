"""``thermogen evaluate``: sample quality of any MNIST pipeline, next to what real images score.

Generates ``--n`` images, computes :func:`thermogen.mnist.evaluate_images`
(FD, KID, confident fraction, class entropy on the shipped MNIST classifier's
features, against the 10,000 test images) and :func:`thermogen.mnist.real_data_floor`
for ``--n`` real training images, and prints both with their ratio. The metrics
run on the CPU; ``--device`` only moves the pipeline.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

from thermogen.cli.arguments import add_device, add_no_progress, add_threads, positive_int


def register(commands: Any) -> None:
    evaluate = commands.add_parser("evaluate", help="FD / KID / digit scores of a pipeline's samples vs MNIST")
    evaluate.add_argument("pipeline", help="bundled name, folder or Hub repo id")
    evaluate.add_argument(
        "--n", type=positive_int, default=2000, help="samples (and real images for the floor) (default: %(default)s)"
    )
    evaluate.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="sampler steps (default: 20 for diffusion, the pipeline's chain length for EBM)",
    )
    evaluate.add_argument(
        "--sampler", default=None, help="swap in another registered sampler (default: the pipeline's)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    evaluate.add_argument(
        "--batch-size", type=positive_int, default=250, help="images per pipeline call (default: %(default)s)"
    )
    evaluate.add_argument("--json", default=None, help="also write the results to this JSON file")
    evaluate.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: download / cache)")
    add_device(evaluate)
    add_threads(evaluate)
    add_no_progress(evaluate)
    evaluate.set_defaults(run=run_evaluate)


def generate(pipeline: Any, n: int, batch_size: int, steps: int | None, generator: Any, progress: bool = False) -> Any:
    """``n`` images (n, C, H, W) in [0, 1] on the CPU, made ``batch_size`` at a time.

    Every pipeline takes the same keywords; ``steps=None`` is the pipeline's own default.
    """
    import torch

    batches = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        output = pipeline(
            batch_size=size, num_inference_steps=steps, generator=generator, output_type="tensor", progress=progress
        )
        batches.append(output.images.detach().float().cpu())
    return torch.cat(batches)


def format_table(samples: dict[str, Any], floor: dict[str, Any]) -> str:
    """The comparison table: metric | samples | real-data floor | ratio.

    The ratio is left out ("-") where the floor is not clearly above 0: KID's
    floor is 0 up to its spread, so a ratio to it would be noise.
    """
    rows = [("metric", "samples", "real-data floor", "ratio")]

    def ratio(a: float, b: float, spread: float = 0.0) -> str:
        return f"{a / b:.2f}" if b > 2 * spread and b > 0 and math.isfinite(a / b) else "-"

    rows.append(("FD", f"{samples['fd']:.4g}", f"{floor['fd']:.4g}", ratio(samples["fd"], floor["fd"])))
    rows.append(
        (
            "KID",
            f"{samples['kid_mean']:.4g} ± {samples['kid_std']:.2g}",
            f"{floor['kid_mean']:.4g} ± {floor['kid_std']:.2g}",
            ratio(samples["kid_mean"], floor["kid_mean"], floor["kid_std"]),
        )
    )
    for key in ("confident_fraction", "class_entropy"):
        rows.append((key, f"{samples[key]:.4f}", f"{floor[key]:.4f}", ratio(samples[key], floor[key])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    if "class_counts" in samples:
        lines.append(f"digits 0-9 drawn: {samples['class_counts']} (real: {floor.get('class_counts')})")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from thermogen.atomic import write_json
    from thermogen.mnist import evaluate_images, real_data_floor
    from thermogen.pipelines.base import Pipeline

    if args.n < 2:
        raise ValueError(f"--n {args.n}; expected at least 2 samples")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}; expected a positive integer")
    overrides = {"sampler": args.sampler} if args.sampler else {}
    pipeline = Pipeline.from_pretrained(args.pipeline, **overrides).to(args.device)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)

    start = time.perf_counter()
    images = generate(pipeline, args.n, args.batch_size, args.steps, generator, progress=not args.no_progress)
    seconds = time.perf_counter() - start
    samples = evaluate_images(images, data_dir=args.data_dir)
    floor = real_data_floor(args.n, data_dir=args.data_dir, seed=args.seed)

    settings = f"steps={args.steps}, sampler={args.sampler}, seed={args.seed}"
    print(f"{args.pipeline}: {args.n} samples in {seconds:.1f} s ({settings})")
    print(format_table(samples, floor))
    if args.json:
        write_json(
            args.json,
            {
                "pipeline": str(args.pipeline),
                "n": args.n,
                "steps": args.steps,
                "sampler": args.sampler,
                "seed": args.seed,
                "generation_seconds": seconds,
                "samples": samples,
                "real_data_floor": floor,
            },
        )
        print(f"wrote {args.json}")
    return 0
