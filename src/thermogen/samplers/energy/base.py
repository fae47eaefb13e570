"""The energy-sampler family: Markov chains on an energy model.

Step-wise use (the loop that :meth:`EnergySampler.sample` runs)::

    with sampler.frozen(model):             # no parameter gradients, eval mode, restored afterwards
        x = x_init
        for i in range(steps):
            x = sampler.step(model, x, generator=g).sample

While sampling, only the input gets gradients: the parameters' ``requires_grad``
flags and the train/eval mode are restored on exit, also after an exception.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from thermogen.interfaces import EnergyModel, Sampler
from thermogen.samplers.callbacks import Callback, StepInfo, apply_callback


@dataclass(frozen=True)
class EnergyStepOutput:
    """Result of one Markov-chain step.

    Attributes:
        sample: the new state, same shape and dtype as the input (B, ...).
        accepted: for Metropolis-corrected samplers, a float mask (B,) of accepted proposals; else None.
    """

    sample: Tensor
    accepted: Tensor | None = None


@dataclass(frozen=True)
class EnergySampleOutput:
    """Result of a whole chain.

    Attributes:
        sample: the final state (B, ...).
        snapshots: states at ``snapshot_steps``, stacked (K, B, ...), or None.
        snapshot_steps: the step indices of the snapshots (state after step i; 0 = after the first step).
        acceptance_rate: mean acceptance over steps and chains (Metropolis samplers), else None.
    """

    sample: Tensor
    snapshots: Tensor | None
    snapshot_steps: list[int]
    acceptance_rate: float | None


class EnergySampler(Sampler):
    """Base class of samplers for :class:`EnergyModel` (Langevin, MALA, HMC).

    Subclasses implement :meth:`step` and set ``self.steps`` (the default chain length).
    """

    steps: int = 100

    @abstractmethod
    def step(self, model: EnergyModel, x: Tensor, generator: torch.Generator | None = None) -> EnergyStepOutput:
        """One transition of the chain from ``x`` (B, ...)."""

    def begin(self, model: EnergyModel, x: Tensor, num_steps: int) -> None:
        """Hook run before a chain (annealed samplers read the chain length here)."""

    @staticmethod
    @contextlib.contextmanager
    def frozen(model: torch.nn.Module) -> Iterator[None]:
        """Eval mode and ``requires_grad=False`` on every parameter; both restored on exit."""
        flags = [p.requires_grad for p in model.parameters()]
        was_training = model.training
        try:
            for p in model.parameters():
                p.requires_grad_(False)
            model.eval()
            yield
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)
            model.train(was_training)

    def sample(
        self,
        model: EnergyModel,
        x_init: Tensor,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        snapshot_steps: Sequence[int] | None = None,
        callback: Callback | None = None,
        progress: bool = False,
    ) -> EnergySampleOutput:
        """Run ``steps`` transitions (default ``self.steps``) from ``x_init`` (B, ...).

        ``snapshot_steps`` are indices in ``[0, steps)``; the book's strip uses
        0, 1, 3, 5, 10, 30, 50, 100, 300, 999 for a 1000-step chain.
        """
        from tqdm.auto import tqdm

        num_steps = self.steps if steps is None else steps
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"steps={num_steps!r}; expected a positive integer")
        wanted = sorted(set(snapshot_steps or []))
        bad = [s for s in wanted if not 0 <= s < num_steps]
        if bad:
            raise ValueError(f"snapshot_steps {bad} are outside [0, {num_steps})")
        snapshots: list[Tensor] = []
        accepted_sum: Tensor | None = None
        x = x_init.detach()
        taken = 0
        with self.frozen(model):
            self.begin(model, x, num_steps)
            for i in tqdm(range(num_steps), desc=type(self).__name__, disable=not progress, leave=False):
                out = self.step(model, x, generator=generator)
                x = out.sample.detach()
                taken += 1
                if out.accepted is not None:
                    total = out.accepted.sum()
                    accepted_sum = total if accepted_sum is None else accepted_sum + total
                x, stop = apply_callback(callback, StepInfo(i, num_steps, None, x))
                if i in wanted:
                    snapshots.append(x.clone())
                if stop:
                    break
        rate = None if accepted_sum is None else float(accepted_sum) / (taken * x.shape[0])
        return EnergySampleOutput(
            sample=x,
            snapshots=torch.stack(snapshots) if snapshots else None,
            snapshot_steps=wanted[: len(snapshots)],
            acceptance_rate=rate,
        )
