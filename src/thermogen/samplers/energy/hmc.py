"""Hamiltonian Monte Carlo with a leapfrog integrator and unit mass (Duane et al. 1987; Neal 2011).

Target ``p_T(x) ∝ exp(-E(x) / T)``, potential ``U = E / T``, score
``s(x) = -grad E(x)``. One transition::

    p ~ N(0, I)
    p <- p + (eps / 2) s(x) / T                                       half kick
    repeat L times:  x <- x + eps p ;  p <- p + eps s(x) / T         (the last kick is a half kick)
    H = E / T + |p|^2 / 2 ;  accept the end point where log u < H(start) - H(end)

Random draws per transition, in order: ``randn(x.shape)`` (p), then ``rand(B)``
(u). ``num_leapfrog_steps`` calls of ``energy_and_score`` per transition: the
value at the starting point is remembered from the previous transition.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput
from thermogen.samplers.energy.mala import ScoreCache, metropolis_accept, per_sample_sum, select


class HMCSampler(EnergySampler):
    """Hamiltonian Monte Carlo; ``sample(...)`` reports the acceptance rate.

    Args:
        steps: default number of transitions.
        step_size: leapfrog step eps (> 0).
        num_leapfrog_steps: L, leapfrog steps per transition (>= 1).
        temperature: T of the target exp(-E / T).
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.3, "num_leapfrog_steps": 5}, "steps": 60}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self, steps: int = 100, step_size: float = 0.1, num_leapfrog_steps: int = 10, temperature: float = 1.0
    ) -> None:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"steps={steps!r}; expected a positive integer")
        if not step_size > 0:
            raise ConfigError(f"step_size={step_size!r}; expected > 0")
        if not isinstance(num_leapfrog_steps, int) or isinstance(num_leapfrog_steps, bool) or num_leapfrog_steps < 1:
            raise ConfigError(f"num_leapfrog_steps={num_leapfrog_steps!r}; expected a positive integer")
        if not temperature > 0:
            raise ConfigError(f"temperature={temperature!r}; expected > 0")
        self.steps = steps
        self.step_size = float(step_size)
        self.num_leapfrog_steps = num_leapfrog_steps
        self.temperature = float(temperature)
        self._cache = ScoreCache()

    def begin(self, model: EnergyModel, x: Tensor, num_steps: int) -> None:
        self._cache.clear()

    @torch.no_grad()
    def step(self, model: EnergyModel, x: Tensor, generator: torch.Generator | None = None) -> EnergyStepOutput:
        eps, temp = self.step_size, self.temperature
        energy, score = self._cache.get(model, x)
        momentum = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        p = momentum + (0.5 * eps / temp) * score
        position = x
        for i in range(self.num_leapfrog_steps):
            position = position + eps * p
            energy_end, score_end = model.energy_and_score(position)
            kick = eps if i < self.num_leapfrog_steps - 1 else 0.5 * eps
            p = p + (kick / temp) * score_end
        acc_dtype = torch.promote_types(energy.dtype, torch.float32)
        h_start = energy.to(acc_dtype) / temp + 0.5 * per_sample_sum(momentum.square()).to(acc_dtype)
        h_end = energy_end.to(acc_dtype) / temp + 0.5 * per_sample_sum(p.square()).to(acc_dtype)
        accept = metropolis_accept(h_start - h_end, generator)
        x_next = select(accept, position, x)
        self._cache.put(model, x_next, torch.where(accept, energy_end, energy), select(accept, score_end, score))
        return EnergyStepOutput(sample=x_next, accepted=accept.to(acc_dtype))
