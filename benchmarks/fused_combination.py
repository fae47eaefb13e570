"""Does the multistep samplers' one fused helper pay off end to end? A/B in one run, model included.

    python benchmarks/fused_combination.py [--threads 2] [--repeats 5]

``thermogen.samplers.diffusion.multistep.linear_combination`` computes ``sum_i w_i t_i``
with one allocation and in-place adds; the alternative is the plain algebra the other
samplers use, ``w_0 t_0 + w_1 t_1 + ...``. This times a whole 10-step
``DiffusionPipeline`` call (median of ``--repeats`` after a warm-up) with each form, twice
in alternation, for UniPC and DEIS on two U-Nets: a small one on 64 x 64 RGB images (where
the sampler's share is largest) and one of the bundled model's size on 28 x 28. The ratio
printed is plain / fused (> 1: the fused form is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence

import torch
from torch import Tensor

import thermogen.samplers.diffusion.adams as adams
import thermogen.samplers.diffusion.unipc as unipc
from thermogen.models.unet import UNet
from thermogen.pipelines import DiffusionPipeline
from thermogen.samplers import DEISSampler, UniPCSampler
from thermogen.samplers.diffusion.multistep import linear_combination
from thermogen.schedules import OffsetCosineSchedule


def plain(terms: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """The plain-algebra form of ``linear_combination``."""
    return sum((w * t for w, t in zip(weights[1:], terms[1:])), weights[0] * terms[0])


def seconds(pipe: DiffusionPipeline, noise: Tensor, repeats: int) -> float:
    pipe(initial_state=noise, num_inference_steps=10, output_type="pt", progress=False)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipe(initial_state=noise, num_inference_steps=10, output_type="pt", progress=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch 64, 10 steps")
    for shape, widths in (((3, 64, 64), (8, 16)), ((1, 28, 28), (16, 32, 64))):
        model = UNet(shape[0], shape[1], widths=widths, block_depth=1)
        noise = torch.randn(64, *shape, generator=torch.Generator().manual_seed(1))
        for sampler in (UniPCSampler(), DEISSampler()):
            pipe = DiffusionPipeline(model, OffsetCosineSchedule(), sampler)
            total = {"fused": 0.0, "plain": 0.0}
            for name in ("fused", "plain", "fused", "plain"):
                form = linear_combination if name == "fused" else plain
                unipc.linear_combination = adams.linear_combination = form  # type: ignore[assignment]
                total[name] += seconds(pipe, noise, args.repeats)
            unipc.linear_combination = adams.linear_combination = linear_combination
            print(
                f"  {shape!s:14s} widths {widths!s:14s} {type(sampler).__name__:13s} "
                f"fused {total['fused'] / 2:.4f} s, plain {total['plain'] / 2:.4f} s, "
                f"plain / fused {total['plain'] / total['fused']:.3f}"
            )


if __name__ == "__main__":
    main()
