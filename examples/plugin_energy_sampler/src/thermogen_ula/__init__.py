"""The unadjusted Langevin algorithm as a thermogen energy-sampler plugin.

    x' = x + (eps / 2) score(x) + sqrt(eps) z,   score = -grad E,   z ~ N(0, I)

(Roberts & Tweedie 1996). Without a Metropolis correction its stationary law is
biased by O(eps); the conformance kit holds it to the unadjusted rule.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from thermogen import EnergyModel
from thermogen.samplers import EnergySampler, EnergyStepOutput


class ULASampler(EnergySampler):
    """Unadjusted Langevin: ``step_size`` eps, ``steps`` transitions per chain."""

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.05}, "steps": 400}

    def __init__(self, steps: int = 100, step_size: float = 0.01) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size={step_size!r}; expected > 0")
        self.steps, self.step_size = steps, float(step_size)

    def step(self, model: EnergyModel, x: torch.Tensor, generator: torch.Generator | None = None) -> EnergyStepOutput:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        drift = 0.5 * self.step_size * model.score(x)
        return EnergyStepOutput(sample=(x + drift + self.step_size**0.5 * noise).detach())
