"""Images per second at DDIM-50's quality: the bundled MNIST pipeline, few-step samplers and forward-pass options.

    python benchmarks/few_step_throughput.py [--n 2000] [--batch 100] [--threads 2] [--repeats 3]

Every configuration samples from the same initial noise. Speed: the median wall time of
``--repeats`` calls of one batch after a warm-up call, as images per second and as a ratio
to DDIM-50 (the book's sampler at 50 steps) measured in the same run. Quality: FD, confident
fraction and class entropy of ``--n`` images with the project's MNIST evaluator
(``thermogen.mnist.evaluate_images``). The goal (issue "few-step sampling"): a configuration
with FD at or below DDIM-50's (within its spread at this N) at >= 5x DDIM-50's images/s.

Configurations: the sampler and number of steps, and two forward-pass options of the
network: ``channels_last`` memory format and bfloat16 autocast (CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from thermogen.mnist import evaluate_images
from thermogen.pipelines import DiffusionPipeline, Pipeline


@dataclass(frozen=True)
class Setting:
    name: str
    sampler: dict[str, Any] | None  # None: the bundled sampler
    steps: int
    channels_last: bool = False
    bf16: bool = False


DDIM = {"_class_name": "ddim"}
SETTINGS = (
    Setting("ddim-50", DDIM, 50),
    Setting("ddim-20", DDIM, 20),
    Setting("bundled sampler, 20 steps", None, 20),
    Setting("bundled sampler, 10 steps", None, 10),
    Setting("dpmpp_3m-10 log_snr", {"_class_name": "dpmpp_3m", "spacing": "log_snr"}, 10),
    Setting("unipc-10 log_snr", {"_class_name": "unipc", "spacing": "log_snr"}, 10),
    Setting("dpmpp_3m-10 + channels_last", {"_class_name": "dpmpp_3m", "spacing": "log_snr"}, 10, channels_last=True),
    Setting("dpmpp_3m-10 + channels_last + bf16", {"_class_name": "dpmpp_3m", "spacing": "log_snr"}, 10, True, True),
)


def pipeline_for(setting: Setting) -> DiffusionPipeline:
    overrides = {} if setting.sampler is None else {"sampler": setting.sampler}
    pipe = Pipeline.from_pretrained("thermogen/ddim-mnist", **overrides)
    assert isinstance(pipe, DiffusionPipeline)
    pipe.progress = False
    if setting.channels_last:
        pipe.model.to(memory_format=torch.channels_last)
    return pipe


@contextlib.contextmanager
def autocast(setting: Setting) -> Iterator[None]:
    with torch.autocast("cpu", dtype=torch.bfloat16) if setting.bf16 else contextlib.nullcontext():
        yield


def images(pipe: DiffusionPipeline, setting: Setting, noise: torch.Tensor) -> torch.Tensor:
    if setting.channels_last:
        noise = noise.contiguous(memory_format=torch.channels_last)
    with autocast(setting):
        out = pipe(initial_state=noise, num_inference_steps=setting.steps, output_type="pt")
    return out.images.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="images for the quality metrics (0: speed only)")
    parser.add_argument("--batch", type=int, default=100, help="images per timed call")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", action="append", default=None, help="run the settings whose name starts so")
    parser.add_argument("--data-dir", default=None, help="MNIST IDX folder (default: download / cache)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundled = DiffusionPipeline.from_pretrained("thermogen/ddim-mnist").sampler.to_config()
    print(f"bundled thermogen/ddim-mnist (sampler {bundled}), batch {args.batch}, {args.threads} threads")
    batch_noise = torch.randn(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    eval_noise = torch.randn(args.n, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    rows = []
    for setting in SETTINGS:
        if args.only and not any(setting.name.startswith(prefix) for prefix in args.only):
            continue
        pipe = pipeline_for(setting)
        images(pipe, setting, batch_noise)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            images(pipe, setting, batch_noise)
            times.append(time.perf_counter() - start)
        rate = args.batch / statistics.median(times)
        metrics: dict[str, Any] = {}
        if args.n:
            made = torch.cat([images(pipe, setting, chunk) for chunk in eval_noise.split(args.batch)])
            metrics = evaluate_images(made, data_dir=args.data_dir)
        rows.append((setting, rate, metrics))
        fd = f"{metrics['fd']:.2f}" if metrics else "-"
        print(f"  {setting.name:38s} {rate:7.2f} images/s  FD {fd}", flush=True)
    baseline = next((rate for setting, rate, _ in rows if setting.name.startswith("ddim-50")), None)
    print(f"\n| setting | model evaluations | images/s | vs DDIM-50 | FD (N = {args.n}) | confident | entropy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for setting, rate, metrics in rows:
        ratio = f"{rate / baseline:.2f}x" if baseline else "-"
        quality = (
            f"{metrics['fd']:.2f} | {metrics['confident_fraction']:.3f} | {metrics['class_entropy']:.3f}"
            if metrics
            else "- | - | -"
        )
        print(f"| {setting.name} | {setting.steps} | {rate:.2f} | {ratio} | {quality} |")


if __name__ == "__main__":
    main()
