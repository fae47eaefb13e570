"""The book's Langevin chain on an energy model (registered as ``sgld``).

The book's chain (Generative Deep Learning, 2nd ed., ch. 7; Du & Mordatch 2019,
arXiv:1903.08689), one step, with ``s(x) = -grad E(x)`` (the gradient of the
book network's output ``f = -E``)::

    x <- clip(x + noise_std * xi)                      xi ~ N(0, I)
    x <- clip(x + step_size * clip(s(x), -grad_clip, grad_clip))

with ``clip`` = clamp to ``sample_clip`` (the data range [-1, 1]). Book values:
60 steps, step_size 10, noise_std 0.005, grad_clip 0.03, so a pixel moves at most
0.3 per step. This is *not* a correctly scaled Langevin chain (that would need
noise sqrt(2 * 10) = 4.5): it is a cold, mostly gradient-driven chain, which is
what makes the short-run EBM training of the book work. The correctly scaled
chain is :class:`~thermogen.samplers.energy.ula.ULASampler` (``ula``).

Random draws: each step draws exactly one ``randn`` of ``x.shape`` from
``generator``, before the gradient, nothing else, so a reference loop with the
same generator reproduces the chain.

Annealing (``final_noise_scale``, see :mod:`~thermogen.samplers.energy.annealing`)
reads the chain's position from its state, a
:class:`~thermogen.samplers.energy.annealing.ChainPosition`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.checks import check_number, check_positive_int
from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.annealing import ChainPosition, noise_scale
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput, check_positive, check_state


class SGLDSampler(EnergySampler):
    """The book's Langevin chain; defaults are the book's (60 steps of size 10, noise 0.005, clips 0.03 and [-1, 1]).

    Args:
        num_steps: default chain length of :meth:`sample`.
        step_size: eta, the multiplier of the (clipped) score (book: 10).
        noise_std: std of the noise added before each gradient step (book: 0.005).
        grad_clip: elementwise bound on the score; None = no clipping.
        sample_clip: (low, high) bounds of x after each update; None = no clipping.
        final_noise_scale: the noise multiplier reached at the last step (geometric decay from 1); 1 = no annealing.

    Example::

        sampler = SGLDSampler(num_steps=60)                  # the book's training chain
        fakes = sampler.sample(energy_model, starts, generator=torch.Generator().manual_seed(0)).sample
    """

    conformance: ClassVar[dict[str, Any]] = {
        "config": {"step_size": 0.02, "noise_std": 0.2, "grad_clip": None, "sample_clip": None},  # 0.2 = sqrt(2 eta)
        "steps": 1000,
    }
    """What the conformance kit holds this sampler to (thermogen.testing.conformance): without clips and with
    noise sqrt(2 eta), the book's chain is a Langevin chain whose gradient is taken after the noise."""

    def __init__(
        self,
        num_steps: int = 60,
        step_size: float = 10.0,
        noise_std: float = 0.005,
        grad_clip: float | None = 0.03,
        sample_clip: tuple[float, float] | None = (-1.0, 1.0),
        final_noise_scale: float = 1.0,
    ) -> None:
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.step_size = check_positive("step_size", step_size)
        self.noise_std = check_number("noise_std", noise_std, low=0.0)
        self.grad_clip = None if grad_clip is None else check_positive("grad_clip", grad_clip)
        if sample_clip is not None and (len(sample_clip) != 2 or not sample_clip[0] < sample_clip[1]):
            raise ConfigError(f"sample_clip={sample_clip!r}; expected (low, high) with low < high, or None")
        self.sample_clip = None if sample_clip is None else (float(sample_clip[0]), float(sample_clip[1]))
        self.final_noise_scale = check_positive("final_noise_scale", final_noise_scale)

    def initial_state(self, model: EnergyModel, x: Tensor, num_steps: int) -> ChainPosition:
        """Step 0 of ``num_steps`` (the annealing schedule's length)."""
        return ChainPosition(0, num_steps)

    @torch.no_grad()
    def step(
        self, model: EnergyModel, x: Tensor, state: ChainPosition, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        """One step of the book's chain from ``x`` (B, ...); returns a new tensor (``x`` is not modified)."""
        position = check_state(state, ChainPosition, type(self).__name__)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x_new = self._clipped(x + (self.noise_std * noise_scale(self.final_noise_scale, position)) * noise)
        _, score = model.energy_and_score(x_new)
        if self.grad_clip is not None:
            score = score.clamp(-self.grad_clip, self.grad_clip)
        x_new = self._clipped(x_new + self.step_size * score)
        return EnergyStepOutput(sample=x_new, state=position.advanced())

    def _clipped(self, x: Tensor) -> Tensor:
        return x if self.sample_clip is None else x.clamp(self.sample_clip[0], self.sample_clip[1])
