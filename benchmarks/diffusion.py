"""Training and sampling speed of the diffusion stack next to a plain PyTorch loop, in the same run.

    python benchmarks/diffusion.py [--widths 16,32,48,64] [--batch 64] [--threads 2]

Prints images/s for
  * training: ``DiffusionTrainer.train_step`` vs a hand-written loop with the same
    network, loss, AdamW and EMA (goal: at least as fast, ratio >= 1.0);
  * sampling: ``DiffusionPipeline.__call__`` (20 DDIM steps) vs the bare cost of
    its 20 network evaluations (goal: overhead beyond the forwards < 5 %);
and what ``torch.inference_mode``, channels_last and ``torch.compile`` change.
Random data of MNIST's shape is used, so no dataset is needed.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig


def timed(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class Images(torch.utils.data.Dataset):
    def __init__(self, n: int) -> None:
        self.images = torch.rand(n, 1, 32, 32, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]


def plain_training_step(
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    generator: torch.Generator,
) -> None:
    """The book's step written out by hand: offset-cosine noising, MAE on the noise, AdamW, EMA."""
    x0 = (images - 0.13) / 0.3
    noise = torch.randn(x0.shape, generator=generator)
    t = torch.rand(x0.shape[0], 1, 1, 1, generator=generator)
    start, end = math.acos(0.95), math.acos(0.02)
    angle = start + t * (end - start)
    signal, noise_rate = torch.cos(angle), torch.sin(angle)
    predicted = model(signal * x0 + noise_rate * noise, noise_rate.flatten())
    loss = F.l1_loss(predicted, noise)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(p, 0.001)
            else:
                e.copy_(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", default="16,32,48,64")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="sampling steps")
    parser.add_argument("--compile", action="store_true", help="also try torch.compile (slow to warm up)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]
    batch = args.batch
    print(f"U-Net widths {widths}, batch {batch}, {args.threads} threads, torch {torch.__version__}")

    # -- training ------------------------------------------------------------------
    data = Images(batch * 8)
    torch.manual_seed(0)
    pipeline = DiffusionPipeline(
        UNet(1, 32, widths=widths), OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer([0.13], [0.3])
    )
    trainer = DiffusionTrainer(pipeline, data, "/tmp/thermogen-bench", DiffusionTrainingConfig(batch_size=batch))
    plain_model = copy.deepcopy(trainer.model)
    plain_ema = copy.deepcopy(plain_model).eval()
    plain_optimizer = torch.optim.AdamW(plain_model.parameters(), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(0)
    batch_images = data.images[:batch]

    rows: list[tuple[str, float, float]] = []
    plain_train = timed(
        lambda: plain_training_step(plain_model, plain_ema, plain_optimizer, batch_images, generator), args.repeats
    )
    ours_train = timed(trainer.train_step, args.repeats)
    rows.append(("train: plain loop", batch / plain_train, 1.0))
    rows.append(("train: DiffusionTrainer", batch / ours_train, plain_train / ours_train))

    # -- sampling ------------------------------------------------------------------
    model = pipeline.model.eval()
    noise = torch.randn(batch, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    level = torch.full((batch,), 0.5)

    def forwards() -> None:
        with torch.inference_mode():
            for _ in range(args.steps):
                model(noise, level)

    def forwards_no_grad() -> None:
        with torch.no_grad():
            for _ in range(args.steps):
                model(noise, level)

    def sample() -> None:
        pipeline(initial_state=noise, num_inference_steps=args.steps, output_type="tensor", progress=False)

    bare = timed(forwards, args.repeats)
    bare_no_grad = timed(forwards_no_grad, args.repeats)
    ours = timed(sample, args.repeats)
    rows.append((f"sample {args.steps} steps: bare forwards (inference_mode)", batch / bare, 1.0))
    rows.append((f"sample {args.steps} steps: bare forwards (no_grad)", batch / bare_no_grad, bare / bare_no_grad))
    rows.append((f"sample {args.steps} steps: DiffusionPipeline", batch / ours, bare / ours))

    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    noise_cl = noise.contiguous(memory_format=torch.channels_last)

    def forwards_channels_last() -> None:
        with torch.inference_mode():
            for _ in range(args.steps):
                channels_last(noise_cl, level)

    cl = timed(forwards_channels_last, args.repeats)
    rows.append((f"sample {args.steps} steps: bare forwards, channels_last", batch / cl, bare / cl))

    if args.compile:
        compiled = torch.compile(copy.deepcopy(model))

        def forwards_compiled() -> None:
            with torch.inference_mode():
                for _ in range(args.steps):
                    compiled(noise, level)

        co = timed(forwards_compiled, args.repeats, warmup=3)
        rows.append((f"sample {args.steps} steps: bare forwards, torch.compile", batch / co, bare / co))

    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  images/s  ratio")
    for name, rate, ratio in rows:
        print(f"{name:<{width}}  {rate:8.1f}  {ratio:5.2f}")
    overhead = (ours - bare) / ours
    print(f"training speed vs plain loop: {plain_train / ours_train:.2f}x (goal >= 1.0)")
    print(f"sampling overhead beyond the network's forwards: {100 * overhead:.1f}% (goal < 5%)")


if __name__ == "__main__":
    main()
