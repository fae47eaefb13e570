"""Speed of the book's EBM on CPU: Langevin steps and contrastive-divergence training steps.

Compares, in one run, thermogen (``SGLDSampler`` + ``EnergyCNN`` with its
hand-written input gradient + ``ReplayBuffer``) with a plain PyTorch loop
written the tutorial way (parameters frozen with ``requires_grad_(False)``,
``model.eval()``, ``x.requires_grad_()``, ``torch.autograd.grad``, clamp, add),
and with the sampler running on the autograd path (``EnergyModel.energy_and_score``,
which any energy model gets). Book settings: batch 128, 60 Langevin steps of
size 10, noise 0.005, gradient clip 0.03, samples clipped to [-1, 1].

Other jobs may share the CPU, so the variants are timed in interleaved rounds
and the medians (and the median of the per-round ratios) are reported. On an
oversubscribed machine OpenMP's spinning threads inflate every figure several
times over (measured: 480 ms instead of ~20 ms per plain step at 2 threads);
``OMP_WAIT_POLICY=PASSIVE`` or ``--threads 1`` gives saner absolute numbers. The
plain loop and the sampler draw the same noise from the same seed; the script
prints the largest difference between their samples.

Run: ``python benchmarks/ebm.py [--threads 2] [--rounds 5] [--batch 128] [--train-steps 3]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import torch

from thermogen.buffers import ReplayBuffer
from thermogen.interfaces import EnergyModel
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.samplers.energy.sgld import SGLDSampler

STEPS, STEP_SIZE, NOISE, GRAD_CLIP, ALPHA, LR = 60, 10.0, 0.005, 0.03, 0.1, 1e-4


# -- the plain PyTorch loop (the tutorial's way) -----------------------------------------------


def plain_langevin(model: EnergyCNN, x: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
    """The book's chain on the book's output f = -E, frozen parameters, autograd w.r.t. x only."""
    flags = [p.requires_grad for p in model.parameters()]
    was_training = model.training
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    for _ in range(steps):
        x = (x + NOISE * torch.randn(x.shape, generator=generator)).clamp(-1.0, 1.0)
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(model.negative_energy(x).sum(), x)
        x = (x.detach() + STEP_SIZE * grad.clamp(-GRAD_CLIP, GRAD_CLIP)).clamp(-1.0, 1.0)
    for p, flag in zip(model.parameters(), flags):
        p.requires_grad_(flag)
    model.train(was_training)
    return x


class AutogradEnergy(EnergyModel):
    """The same network through the generic autograd ``energy_and_score`` of ``EnergyModel``."""

    def __init__(self, net: EnergyCNN) -> None:
        super().__init__()
        self.net = net

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.net.sample_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def cd_step(
    model: EnergyCNN,
    optimizer: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
) -> None:
    """The book's training step after sampling: one forward on [real, fake], loss, backward, Adam."""
    real = (real + NOISE * torch.randn(real.shape, generator=generator)).clamp(-1.0, 1.0)
    out = model.negative_energy(torch.cat([real, fake]))
    real_out, fake_out = out[: real.shape[0]], out[real.shape[0] :]
    loss = fake_out.mean() - real_out.mean() + ALPHA * (real_out.square() + fake_out.square()).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def plain_train_step(
    model: EnergyCNN,
    optimizer: torch.optim.Optimizer,
    buffer: list[torch.Tensor],
    real: torch.Tensor,
    generator: torch.Generator,
    rng: random.Random,
) -> None:
    """Book/tutorial buffer as a Python list (prepend, truncate) + plain Langevin + CD step."""
    batch = real.shape[0]
    n_new = int(torch.binomial(torch.tensor(float(batch)), torch.tensor(0.05), generator=generator))
    fresh = torch.rand((n_new, *real.shape[1:]), generator=generator) * 2 - 1
    old = torch.cat(rng.choices(buffer, k=batch - n_new), dim=0)
    fake = plain_langevin(model, torch.cat([fresh, old]), STEPS, generator)
    buffer[:0] = list(fake.split(1))
    del buffer[8192:]
    cd_step(model, optimizer, real, fake, generator)


def thermogen_train_step(
    model: EnergyCNN,
    optimizer: torch.optim.Optimizer,
    buffer: ReplayBuffer,
    sampler: SGLDSampler,
    real: torch.Tensor,
    generator: torch.Generator,
) -> None:
    start, _ = buffer.sample(real.shape[0], generator)
    fake = sampler.sample(model, start, generator=generator).sample
    buffer.push(fake)
    cd_step(model, optimizer, real, fake, generator)


# -- timing -------------------------------------------------------------------------------------


def interleaved(variants: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each variant, timed in alternating rounds after one warm-up call each."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(times: dict[str, list[float]], per: int, unit: str) -> None:
    base_name = next(iter(times))
    base = times[base_name]
    for name, values in times.items():
        ratio = statistics.median(b / v for b, v in zip(base, values))
        print(
            f"  {name:34s} {1e3 * statistics.median(values) / per:8.2f} ms/{unit}   "
            f"(min {1e3 * min(values) / per:7.2f})   speed-up vs {base_name}: {ratio:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=3, help="training steps per timed round")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {STEPS} Langevin steps")

    torch.manual_seed(0)
    model = EnergyCNN()
    sampler = SGLDSampler()
    x0 = torch.rand(args.batch, 1, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1

    # Same samples for the same seed (the two differ only in float rounding).
    plain = plain_langevin(model, x0, STEPS, torch.Generator().manual_seed(2))
    ours = sampler.sample(model, x0, generator=torch.Generator().manual_seed(2)).sample
    autograd = sampler.sample(AutogradEnergy(model), x0, generator=torch.Generator().manual_seed(2)).sample
    print(
        f"max |plain - thermogen| after {STEPS} steps: {(plain - ours).abs().max().item():.3g}; "
        f"|plain - thermogen autograd path|: {(plain - autograd).abs().max().item():.3g}"
    )

    wrapped = AutogradEnergy(model)
    print("Langevin chain (per step):")
    chains = {
        "plain PyTorch loop (frozen params)": lambda: plain_langevin(model, x0, STEPS, torch.Generator()),
        "SGLDSampler, autograd path": lambda: sampler.sample(wrapped, x0, generator=torch.Generator()),
        "SGLDSampler + EnergyCNN (default)": lambda: sampler.sample(model, x0, generator=torch.Generator()),
    }
    report(interleaved(chains, args.rounds), STEPS, "step")

    print(f"Training step (buffer + {STEPS} Langevin steps + CD update, Adam):")
    real = torch.rand(args.batch, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    plain_model, our_model = EnergyCNN(), EnergyCNN()
    our_model.load_state_dict(plain_model.state_dict())
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=LR, eps=1e-7)
    our_opt = torch.optim.Adam(our_model.parameters(), lr=LR, eps=1e-7)
    gen = torch.Generator().manual_seed(4)
    rng = random.Random(0)
    plain_buffer = list((torch.rand(args.batch, 1, 32, 32, generator=gen) * 2 - 1).split(1))
    buffer = ReplayBuffer()

    def plain_round() -> None:
        for _ in range(args.train_steps):
            plain_train_step(plain_model, plain_opt, plain_buffer, real, gen, rng)

    def our_round() -> None:
        for _ in range(args.train_steps):
            thermogen_train_step(our_model, our_opt, buffer, sampler, real, gen)

    report(
        interleaved({"plain PyTorch loop": plain_round, "thermogen": our_round}, args.rounds),
        args.train_steps,
        "train step",
    )


if __name__ == "__main__":
    main()
