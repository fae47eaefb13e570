"""Metropolis-adjusted Langevin (MALA; Roberts & Tweedie 1996, Bernoulli 2(4)).

Target ``p_T(x) ∝ exp(-E(x) / T)``, score ``s(x) = -grad E(x)``. One step::

    x' = x + eta * s(x) + sqrt(2 eta T) * xi                     xi ~ N(0, I)
    log a = (E(x) - E(x')) / T + log q(x | x') - log q(x' | x)
    log q(b | a) = -|b - a - eta * s(a)|^2 / (4 eta T)
    accept x' where log u < log a,  u ~ U(0, 1) per chain

The correction makes ``p_T`` exactly invariant for any step size, unlike
unadjusted Langevin. Random draws per step, in order: ``randn(x.shape)``
(xi), then ``rand(B)`` (u). One ``energy_and_score`` call per step: the value
at the current state is remembered from the previous step (:class:`ScoreCache`).
"""

from __future__ import annotations

import math
import weakref
from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput


class ScoreCache:
    """Remembers ``(E(x), s(x))`` of the last state a Metropolis sampler returned.

    A lookup hits only for the very same data (same storage pointer, shape,
    strides, dtype and in-place version) on the same model with unchanged
    parameters; anything else recomputes. The cache holds the state tensor, so
    its memory cannot be reused by another tensor while cached.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._model: weakref.ref[EnergyModel] | None = None
        self._state: Tensor | None = None
        self._key: tuple[object, ...] | None = None
        self._value: tuple[Tensor, Tensor] | None = None

    @staticmethod
    def _key_of(model: EnergyModel, x: Tensor) -> tuple[object, ...] | None:
        if x.is_inference() or any(p.is_inference() for p in model.parameters()):
            return None  # inference tensors have no version counter
        params = tuple(p._version for p in model.parameters())
        return (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype, x.device, x._version, params)

    def get(self, model: EnergyModel, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(E(x), s(x))``, from the cache when it holds exactly this state."""
        key = self._key_of(model, x)
        if key is not None and key == self._key and self._model is not None and self._model() is model:
            assert self._value is not None
            return self._value
        value = model.energy_and_score(x)
        self.put(model, x, *value)
        return value

    def put(self, model: EnergyModel, x: Tensor, energy: Tensor, score: Tensor) -> None:
        """Remember ``(energy, score)`` for state ``x``."""
        self._model = weakref.ref(model)
        self._state = x
        self._key = self._key_of(model, x)
        self._value = (energy, score)


def per_sample_sum(x: Tensor) -> Tensor:
    """Sum over all but the batch dimension: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def metropolis_accept(log_ratio: Tensor, generator: torch.Generator | None) -> Tensor:
    """Boolean mask (B,): ``log u < log_ratio`` with u ~ U(0, 1); NaN ratios reject."""
    u = torch.rand(log_ratio.shape, generator=generator, dtype=log_ratio.dtype, device=log_ratio.device)
    return torch.log(u) < log_ratio


def select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-chain choice: rows of ``new`` where ``mask`` (B,) is true, else of ``old``."""
    return torch.where(mask.view(-1, *([1] * (new.ndim - 1))), new, old)


class MALASampler(EnergySampler):
    """Metropolis-adjusted Langevin; ``sample(...)`` reports the acceptance rate.

    Args:
        steps: default chain length.
        step_size: eta (> 0); aim for an acceptance rate around 0.57 (Roberts & Rosenthal 1998).
        temperature: T of the target exp(-E / T).
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"step_size": 0.15}, "steps": 400}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(self, steps: int = 100, step_size: float = 0.01, temperature: float = 1.0) -> None:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"steps={steps!r}; expected a positive integer")
        if not step_size > 0:
            raise ConfigError(f"step_size={step_size!r}; expected > 0")
        if not temperature > 0:
            raise ConfigError(f"temperature={temperature!r}; expected > 0")
        self.steps = steps
        self.step_size = float(step_size)
        self.temperature = float(temperature)
        self._cache = ScoreCache()

    def begin(self, model: EnergyModel, x: Tensor, num_steps: int) -> None:
        self._cache.clear()

    @torch.no_grad()
    def step(self, model: EnergyModel, x: Tensor, generator: torch.Generator | None = None) -> EnergyStepOutput:
        eta, temp = self.step_size, self.temperature
        energy, score = self._cache.get(model, x)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        proposal = x + eta * score + math.sqrt(2.0 * eta * temp) * xi
        energy_new, score_new = model.energy_and_score(proposal)
        # log q(x'|x) = -|xi|^2 / 2 exactly; log q(x|x') from the reverse move.
        backward = x - proposal - eta * score_new
        log_q_forward = -0.5 * per_sample_sum(xi.square())
        log_q_backward = -per_sample_sum(backward.square()) / (4.0 * eta * temp)
        acc_dtype = torch.promote_types(energy.dtype, torch.float32)
        log_ratio = (energy - energy_new).to(acc_dtype) / temp + (log_q_backward - log_q_forward).to(acc_dtype)
        accept = metropolis_accept(log_ratio, generator)
        x_next = select(accept, proposal, x)
        self._cache.put(model, x_next, torch.where(accept, energy_new, energy), select(accept, score_new, score))
        return EnergyStepOutput(sample=x_next, accepted=accept.to(acc_dtype))
