"""Random-walk Metropolis as a thermogen energy-sampler plugin.

    x' = x + step_size * z,   z ~ N(0, I)
    accept x' where log u < (E(x) - E(x')) / T,   u ~ U(0, 1) per chain

(Metropolis et al. 1953). It needs energies only, no score, and leaves exp(-E / T)
exactly invariant, so the conformance kit holds it to the Metropolis-corrected rule.
Random draws per step, in order: ``randn(x.shape)`` (z), then ``rand(B)`` (u).

The chain's state is the current point with its energy (:class:`Point`), so each
step evaluates the model once, at the proposal; the sampler object itself holds
only its configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from thermogen import EnergyModel
from thermogen.samplers import EnergySampler, EnergyStepOutput
from thermogen.samplers.energy.metropolis import log_ratio_dtype, metropolis_accept, select


@dataclass(frozen=True)
class Point:
    """A chain's state: x (B, ...) and E(x) (B,)."""

    x: torch.Tensor
    energy: torch.Tensor


class RWMSampler(EnergySampler):
    """Random-walk Metropolis: Gaussian proposals of std ``step_size``, ``num_steps`` transitions per chain."""

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.6}, "steps": 600}

    def __init__(self, num_steps: int = 100, step_size: float = 0.5, temperature: float = 1.0) -> None:
        if not step_size > 0 or not temperature > 0:
            raise ValueError(f"step_size={step_size!r}, temperature={temperature!r}; expected both > 0")
        self.num_steps, self.step_size, self.temperature = num_steps, float(step_size), float(temperature)

    def initial_state(self, model: EnergyModel, x: torch.Tensor, num_steps: int) -> Point:
        return Point(x, model(x))

    @torch.no_grad()
    def step(
        self, model: EnergyModel, x: torch.Tensor, state: Point, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        here = state if state.x is x else Point(x, model(x))  # a callback may have replaced the sample
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        moved = x + self.step_size * z
        proposal = Point(moved, model(moved))
        dtype = log_ratio_dtype(here.energy)  # at least float32
        accept = metropolis_accept((here.energy - proposal.energy).to(dtype) / self.temperature, generator)
        chosen = Point(select(accept, proposal.x, here.x), torch.where(accept, proposal.energy, here.energy))
        return EnergyStepOutput(sample=chosen.x, accepted=accept.to(dtype), state=chosen)
