"""Langevin dynamics on an energy model: the book's sampler and the textbook one.

The book's chain (Generative Deep Learning, 2nd ed., ch. 7; Du & Mordatch 2019,
arXiv:1903.08689), one step, with ``s(x) = -grad E(x)`` (the gradient of the
book network's output ``f = -E``)::

    x <- clip(x + noise_std * xi)                      xi ~ N(0, I)
    x <- clip(x + step_size * clip(s(x), -grad_clip, grad_clip))

with ``clip`` = clamp to ``sample_clip`` (the data range [-1, 1]). Book values:
60 steps, step_size 10, noise_std 0.005, grad_clip 0.03, so a pixel moves at most
0.3 per step. This is *not* a correctly scaled Langevin chain (that would need
noise sqrt(2 * 10) = 4.5): it is a cold, mostly gradient-driven chain, which is
what makes the short-run EBM training of the book work.

The textbook (unadjusted) Langevin algorithm targets ``p_T(x) ∝ exp(-E(x) / T)``::

    x <- x + step_size * s(x) + sqrt(2 * step_size * T) * xi

with no clipping; it is exact as ``step_size -> 0`` (Roberts & Tweedie 1996).

Random draws: each step draws exactly one ``randn`` of ``x.shape`` from
``generator`` (before the gradient in the book form), nothing else, so a
reference loop with the same generator reproduces the chain.

Annealing: with ``final_noise_scale = k < 1`` the noise is multiplied by
``k ** (i / (n - 1))`` at step i of an n-step chain, decaying geometrically
from 1 to k (cooling the chain towards a mode). The chain position is reset by
:meth:`SGLDSampler.begin`, which :meth:`sample` calls; a hand-written loop
calls it too.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel
from thermogen.samplers.energy.base import EnergySampler, EnergyStepOutput

LangevinForm = Literal["book", "textbook"]


class SGLDSampler(EnergySampler):
    """Langevin sampler; defaults are the book's (60 steps of size 10, noise 0.005, clips 0.03 and [-1, 1]).

    Args:
        steps: default chain length of :meth:`sample`.
        step_size: eta, the multiplier of the score (book: 10).
        noise_std: std of the noise added before each gradient step, book form only (book: 0.005).
        grad_clip: elementwise bound on the score, book form only; None = no clipping.
        sample_clip: (low, high) bounds of x after each update, book form only; None = no clipping.
        form: "book" (the update above) or "textbook" (unadjusted Langevin, noise sqrt(2 eta T), no clipping).
        temperature: T of the textbook form's target exp(-E / T) (ignored by the book form).
        final_noise_scale: the noise multiplier reached at the last step (geometric decay from 1); 1 = no annealing.
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"form": "textbook", "step_size": 0.05}, "steps": 400}
    """What the conformance kit holds this sampler to (thermogen.testing.conformance)."""

    def __init__(
        self,
        steps: int = 60,
        step_size: float = 10.0,
        noise_std: float = 0.005,
        grad_clip: float | None = 0.03,
        sample_clip: tuple[float, float] | None = (-1.0, 1.0),
        form: LangevinForm = "book",
        temperature: float = 1.0,
        final_noise_scale: float = 1.0,
    ) -> None:
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ConfigError(f"steps={steps!r}; expected a positive integer")
        if not step_size > 0:
            raise ConfigError(f"step_size={step_size!r}; expected > 0")
        if not noise_std >= 0:
            raise ConfigError(f"noise_std={noise_std!r}; expected >= 0")
        if grad_clip is not None and not grad_clip > 0:
            raise ConfigError(f"grad_clip={grad_clip!r}; expected > 0 or None")
        if sample_clip is not None and (len(sample_clip) != 2 or not sample_clip[0] < sample_clip[1]):
            raise ConfigError(f"sample_clip={sample_clip!r}; expected (low, high) with low < high, or None")
        if form not in ("book", "textbook"):
            raise ConfigError(f"form={form!r}; expected 'book' or 'textbook'")
        if not temperature > 0:
            raise ConfigError(f"temperature={temperature!r}; expected > 0")
        if not final_noise_scale > 0:
            raise ConfigError(f"final_noise_scale={final_noise_scale!r}; expected > 0 (1 = no annealing)")
        self.steps = steps
        self.step_size = float(step_size)
        self.noise_std = float(noise_std)
        self.grad_clip = None if grad_clip is None else float(grad_clip)
        self.sample_clip = None if sample_clip is None else (float(sample_clip[0]), float(sample_clip[1]))
        self.form = form
        self.temperature = float(temperature)
        self.final_noise_scale = float(final_noise_scale)
        self._chain_length: int | None = None
        self._position = 0

    def begin(self, model: EnergyModel, x: Tensor, num_steps: int) -> None:
        """Start a chain of ``num_steps`` steps (resets the annealing position)."""
        self._chain_length = num_steps
        self._position = 0

    def noise_scale(self) -> float:
        """The annealing multiplier of the noise at the current step (1 without annealing)."""
        if self.final_noise_scale == 1.0:
            return 1.0
        if self._chain_length is None:
            raise RuntimeError("annealing (final_noise_scale != 1) needs sampler.begin(model, x, num_steps) first")
        fraction = min(self._position / max(self._chain_length - 1, 1), 1.0)
        return self.final_noise_scale**fraction

    @torch.no_grad()
    def step(self, model: EnergyModel, x: Tensor, generator: torch.Generator | None = None) -> EnergyStepOutput:
        """One Langevin step from ``x`` (B, ...); returns a new tensor (``x`` is not modified)."""
        scale = self.noise_scale()
        self._position += 1
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if self.form == "textbook":
            _, score = model.energy_and_score(x)
            noise_std = math.sqrt(2.0 * self.step_size * self.temperature) * scale
            return EnergyStepOutput(sample=x + self.step_size * score + noise_std * noise)

        # The book's form, with in-place updates on the fresh tensor `x_new`.
        x_new = torch.add(x, noise, alpha=self.noise_std * scale)
        self._clip_sample(x_new)
        _, score = model.energy_and_score(x_new)
        if self.grad_clip is not None:
            score = score.clamp(-self.grad_clip, self.grad_clip)
        x_new.add_(score, alpha=self.step_size)
        self._clip_sample(x_new)
        return EnergyStepOutput(sample=x_new)

    def _clip_sample(self, x: Tensor) -> None:
        if self.sample_clip is not None:
            x.clamp_(self.sample_clip[0], self.sample_clip[1])
