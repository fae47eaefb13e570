"""The Metropolis-Hastings correction shared by MALA and HMC.

A corrected step proposes x' from x and keeps it with probability ``min(1, a)``:
it draws ``u ~ U(0, 1)`` per chain (one ``rand(B)``, after the proposal's own
draws) and accepts where ``log u < log a``; a NaN ``log a`` rejects. Rejected
chains stay at x. Log-ratios are formed in at least float32
(:func:`log_ratio_dtype`), so half-precision energies do not decide acceptance
by rounding.

A chain's state is its current point with ``E`` and the score there
(:class:`MetropolisState`), so a step evaluates the energy model only at its
proposals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput, check_state


@dataclass(frozen=True)
class MetropolisState:
    """A point with what the energy model says there.

    Attributes:
        point: x (B, ...).
        energy: E(x) (B,), x's dtype.
        score: -grad E(x), x's shape.

    Example::

        state = evaluate(model, x)                           # one energy_and_score call
        state.energy, state.score                            # (B,), x.shape
    """

    point: Tensor
    energy: Tensor
    score: Tensor


class MetropolisSampler(EnergySampler):
    """Base of the Metropolis-corrected samplers (MALA, HMC): a chain's state is a :class:`MetropolisState`.

    Subclasses implement ``step``: read the state with :func:`state_at`, propose, and end with
    :func:`accept_or_keep`.

    Example::

        class RandomWalk(MetropolisSampler):                 # x' = x + 0.5 z, accepted with min(1, exp(E(x) - E(x')))
            def step(self, model, x, state, generator=None):
                here = state_at(model, x, state, "RandomWalk")
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
                proposal = evaluate(model, x + 0.5 * z)
                return accept_or_keep(here.energy - proposal.energy, proposal, here, generator)
    """

    def initial_state(self, model: EnergyModel, x: Tensor, num_steps: int) -> MetropolisState:
        """``E`` and the score at ``x``."""
        return evaluate(model, x)


def evaluate(model: EnergyModel, x: Tensor) -> MetropolisState:
    """One ``energy_and_score`` call at ``x``."""
    energy, score = model.energy_and_score(x)
    return MetropolisState(x, energy, score)


def state_at(model: EnergyModel, x: Tensor, state: Any, sampler: str) -> MetropolisState:
    """``state`` if it describes ``x`` (the very same tensor), else a fresh evaluation at ``x``."""
    checked = check_state(state, MetropolisState, sampler)
    return checked if checked.point is x else evaluate(model, x)


def per_sample_sum(x: Tensor) -> Tensor:
    """Sum over all but the batch dimension: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def log_ratio_dtype(energy: Tensor) -> torch.dtype:
    """The dtype of the acceptance test: the energy's, at least float32."""
    return torch.promote_types(energy.dtype, torch.float32)


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator | None) -> Tensor:
    """Boolean mask (B,): ``log u < log_ratio`` with u ~ U(0, 1); NaN ratios reject."""
    u = torch.rand(log_ratio.shape, generator=generator, dtype=log_ratio.dtype, device=log_ratio.device)
    return torch.log(u) < log_ratio


def select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-chain choice: rows of ``new`` where ``mask`` (B,) is true, else of ``old``."""
    return torch.where(mask.view(-1, *([1] * (new.ndim - 1))), new, old)


def accept_or_keep(
    log_ratio: Tensor, proposal: MetropolisState, current: MetropolisState, generator: torch.Generator | None
) -> EnergyStepOutput:
    """The end of a corrected step: accept ``proposal`` where ``log u < log_ratio`` (B,), else keep ``current``.

    The returned state is the chosen point with its energy and score, so the next step evaluates nothing there.
    """
    accept = metropolis_accept(log_ratio, generator)
    chosen = MetropolisState(
        point=select(accept, proposal.point, current.point),
        energy=torch.where(accept, proposal.energy, current.energy),
        score=select(accept, proposal.score, current.score),
    )
    return EnergyStepOutput(sample=chosen.point, accepted=accept.to(log_ratio.dtype), state=chosen)
