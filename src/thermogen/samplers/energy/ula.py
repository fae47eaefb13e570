"""The unadjusted Langevin algorithm (ULA; Roberts & Tweedie 1996, Bernoulli 2(4)), registered as ``ula``.

Target ``p_T(x) ∝ exp(-E(x) / T)``, score ``s(x) = -grad E(x)``. One step::

    x <- x + step_size * s(x) + sqrt(2 * step_size * T) * xi            xi ~ N(0, I)

with no clipping. It is exact as ``step_size -> 0``; at a finite step its
stationary law is biased by O(step_size) (on N(0, 1): variance
1 / (1 - step_size / 2)). :class:`~thermogen.samplers.energy.mala.MALASampler`
removes that bias with a Metropolis correction.

Random draws: each step draws exactly one ``randn`` of ``x.shape`` from
``generator`` (before the score), nothing else.

Annealing (``final_noise_scale``, see :mod:`~thermogen.samplers.energy.annealing`)
reads the chain's position from its state, a
:class:`~thermogen.samplers.energy.annealing.ChainPosition`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.checks import check_positive_int
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.annealing import ChainPosition, noise_scale
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput, check_positive, check_state


class ULASampler(EnergySampler):
    """Unadjusted Langevin dynamics targeting exp(-E / T).

    Args:
        num_steps: default chain length of :meth:`sample`.
        step_size: eta (> 0), the multiplier of the score; the noise std is sqrt(2 eta T).
        temperature: T of the target exp(-E / T).
        final_noise_scale: the noise multiplier reached at the last step (geometric decay from 1); 1 = no annealing.

    Example::

        sampler = ULASampler(step_size=0.01, temperature=1.0)
        out = sampler.sample(energy_model, x_init, num_steps=1000, generator=torch.Generator().manual_seed(0))
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.05}, "steps": 400}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self,
        num_steps: int = 100,
        step_size: float = 0.01,
        temperature: float = 1.0,
        final_noise_scale: float = 1.0,
    ) -> None:
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.step_size = check_positive("step_size", step_size)
        self.temperature = check_positive("temperature", temperature)
        self.final_noise_scale = check_positive("final_noise_scale", final_noise_scale)

    def initial_state(self, model: EnergyModel, x: Tensor, num_steps: int) -> ChainPosition:
        """Step 0 of ``num_steps`` (the annealing schedule's length)."""
        return ChainPosition(0, num_steps)

    @torch.no_grad()
    def step(
        self, model: EnergyModel, x: Tensor, state: ChainPosition, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        """One ULA step from ``x`` (B, ...); returns a new tensor."""
        position = check_state(state, ChainPosition, type(self).__name__)
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        _, score = model.energy_and_score(x)
        noise_std = math.sqrt(2.0 * self.step_size * self.temperature) * noise_scale(self.final_noise_scale, position)
        return EnergyStepOutput(sample=x + self.step_size * score + noise_std * noise, state=position.advanced())
