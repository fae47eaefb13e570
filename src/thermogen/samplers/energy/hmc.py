"""Hamiltonian Monte Carlo with a leapfrog integrator and unit mass (Duane et al. 1987; Neal 2011).

Target ``p_T(x) ∝ exp(-E(x) / T)``, potential ``U = E / T``, score
``s(x) = -grad E(x)``. One transition::

    p ~ N(0, I)
    p <- p + (eps / 2) s(x) / T                                       half kick
    repeat L times:  x <- x + eps p ;  p <- p + eps s(x) / T         (the last kick is a half kick)
    H = E / T + |p|^2 / 2 ;  accept the end point where log u < H(start) - H(end)

Random draws per transition, in order: ``randn(x.shape)`` (p), then ``rand(B)``
(u). ``num_leapfrog_steps`` calls of ``energy_and_score`` per transition: the
chain's state (:class:`~thermogen.samplers.energy.metropolis.MetropolisState`)
holds ``E`` and ``s`` at the starting point.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.checks import check_positive_int
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergyStepOutput, check_positive
from thermogen.samplers.energy.metropolis import (
    MetropolisSampler,
    MetropolisState,
    accept_or_keep,
    evaluate,
    log_ratio_dtype,
    per_sample_sum,
    state_at,
)


class HMCSampler(MetropolisSampler):
    """Hamiltonian Monte Carlo; ``sample(...)`` reports the acceptance rate.

    Args:
        num_steps: default number of transitions.
        step_size: leapfrog step eps (> 0).
        num_leapfrog_steps: L, leapfrog steps per transition (>= 1).
        temperature: T of the target exp(-E / T).

    Example::

        sampler = HMCSampler(step_size=0.3, num_leapfrog_steps=5)
        out = sampler.sample(energy_model, x_init, num_steps=60, generator=torch.Generator().manual_seed(0))
        print(out.acceptance_rate)
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.3, "num_leapfrog_steps": 5}, "steps": 60}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self, num_steps: int = 100, step_size: float = 0.1, num_leapfrog_steps: int = 10, temperature: float = 1.0
    ) -> None:
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.step_size = check_positive("step_size", step_size)
        self.num_leapfrog_steps = check_positive_int("num_leapfrog_steps", num_leapfrog_steps)
        self.temperature = check_positive("temperature", temperature)

    @torch.no_grad()
    def step(
        self, model: EnergyModel, x: Tensor, state: MetropolisState, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        eps, temp = self.step_size, self.temperature
        start = state_at(model, x, state, type(self).__name__)
        momentum = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        p = momentum + (0.5 * eps / temp) * start.score
        end = start
        for i in range(self.num_leapfrog_steps):
            end = evaluate(model, end.point + eps * p)
            kick = eps if i < self.num_leapfrog_steps - 1 else 0.5 * eps
            p = p + (kick / temp) * end.score
        dtype = log_ratio_dtype(start.energy)
        h_start = start.energy.to(dtype) / temp + 0.5 * per_sample_sum(momentum.square()).to(dtype)
        h_end = end.energy.to(dtype) / temp + 0.5 * per_sample_sum(p.square()).to(dtype)
        return accept_or_keep(h_start - h_end, end, start, generator)
