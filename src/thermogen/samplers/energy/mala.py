"""Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996, Bernoulli 2(4)).

Target ``p_T(x) ∝ exp(-E(x) / T)``, score ``s(x) = -grad E(x)``. One step::

    x' = x + eta * s(x) + sqrt(2 eta T) * xi                     xi ~ N(0, I)
    log a = (E(x) - E(x')) / T + log q(x | x') - log q(x' | x)
    log q(b | a) = -|b - a - eta * s(a)|^2 / (4 eta T)
    accept x' where log u < log a,  u ~ U(0, 1) per chain

The correction makes ``p_T`` exactly invariant for any step size, unlike
unadjusted Langevin. Random draws per step, in order: ``randn(x.shape)``
(xi), then ``rand(B)`` (u). One ``energy_and_score`` call per step, at the
proposal: the chain's state (:class:`~thermogen.samplers.energy.metropolis.MetropolisState`)
holds ``E`` and ``s`` at the current point.
"""

from __future__ import annotations

import math
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


class MALASampler(MetropolisSampler):
    """Metropolis-adjusted Langevin; ``sample(...)`` reports the acceptance rate.

    Args:
        num_steps: default chain length.
        step_size: eta (> 0); aim for an acceptance rate around 0.57 (Roberts & Rosenthal 1998).
        temperature: T of the target exp(-E / T).

    Example::

        sampler = MALASampler(step_size=0.05)
        out = sampler.sample(energy_model, x_init, num_steps=500, generator=torch.Generator().manual_seed(0))
        print(out.acceptance_rate)
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.15}, "steps": 400}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(self, num_steps: int = 100, step_size: float = 0.01, temperature: float = 1.0) -> None:
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.step_size = check_positive("step_size", step_size)
        self.temperature = check_positive("temperature", temperature)

    @torch.no_grad()
    def step(
        self, model: EnergyModel, x: Tensor, state: MetropolisState, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        eta, temp = self.step_size, self.temperature
        here = state_at(model, x, state, type(self).__name__)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        proposal = evaluate(model, x + eta * here.score + math.sqrt(2.0 * eta * temp) * xi)
        # log q(x'|x) = -|xi|^2 / 2 exactly; log q(x|x') from the reverse move.
        backward = x - proposal.point - eta * proposal.score
        log_q_forward = -0.5 * per_sample_sum(xi.square())
        log_q_backward = -per_sample_sum(backward.square()) / (4.0 * eta * temp)
        dtype = log_ratio_dtype(here.energy)
        log_ratio = (here.energy - proposal.energy).to(dtype) / temp + (log_q_backward - log_q_forward).to(dtype)
        return accept_or_keep(log_ratio, proposal, here, generator)
