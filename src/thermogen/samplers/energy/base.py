"""The energy-sampler protocol: a sampler is configuration, the chain's state is explicit.

A sampler object holds its constructor arguments and nothing else: sampling never
changes it, so one object runs any number of chains, one after the other or
interleaved step by step. What a chain carries from one step to the next (the
step index for annealing, ``E(x)`` and the score at the current point for the
Metropolis samplers) is its *state*, returned with every step. The loop that
:meth:`EnergySampler.sample` runs, written out::

    with sampler.frozen(model):             # no parameter gradients, eval mode, restored afterwards
        x = x_init
        state = sampler.initial_state(model, x, num_steps)
        for i in range(num_steps):
            out = sampler.step(model, x, state, generator=g)
            x, state = out.sample, out.state

A state describes the sample it was returned with; a step never modifies its
input. To change the sample between steps, make a new tensor (a callback
returns one): the Metropolis samplers see that their state describes another
tensor and evaluate ``E`` and the score afresh.

While sampling, only the input gets gradients: the parameters' ``requires_grad``
flags and the train/eval mode are restored on exit, also after an exception.
"""

from __future__ import annotations

import contextlib
import inspect
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from thermogen import registry
from thermogen.checks import check_number, check_positive_int
from thermogen.interfaces import EnergyModel, Sampler
from thermogen.samplers.callbacks import Callback, StepInfo, apply_callback
from thermogen.samplers.energy.old_configs import upgrade_config

S = TypeVar("S")
E = TypeVar("E", bound="EnergySampler")


@dataclass(frozen=True)
class EnergyStepOutput:
    """Result of one Markov-chain step.

    Attributes:
        sample: the new point of the chain, same shape and dtype as the input (B, ...).
        accepted: for Metropolis-corrected samplers, a float mask (B,) of accepted proposals; else None.
        state: what the next step needs (pass it back to :meth:`EnergySampler.step`); None for samplers
            whose steps need nothing.

    Example::

        out = sampler.step(model, x, state, generator=g)
        x, state = out.sample, out.state                     # out.accepted: (B,) for MALA and HMC
    """

    sample: Tensor
    accepted: Tensor | None = None
    state: Any = None


@dataclass(frozen=True)
class EnergySampleOutput:
    """Result of a whole chain.

    Attributes:
        sample: the final state (B, ...).
        snapshots: states at ``snapshot_steps``, stacked (K, B, ...), or None.
        snapshot_steps: the step indices of the snapshots (state after step i; 0 = after the first step).
        acceptance_rate: mean acceptance over steps and chains (Metropolis samplers), else None.

    Example::

        out = sampler.sample(model, x_init, num_steps=1000, snapshot_steps=[0, 99, 999])
        out.sample, out.snapshots.shape                      # (B, ...), (3, B, ...)
    """

    sample: Tensor
    snapshots: Tensor | None
    snapshot_steps: list[int]
    acceptance_rate: float | None


class EnergySampler(Sampler):
    """Base class of samplers for :class:`EnergyModel` (Langevin, MALA, HMC).

    Subclasses implement :meth:`step`, override :meth:`initial_state` if their steps carry
    something, and set ``self.num_steps`` (the default chain length) from their arguments.
    Nothing else is stored on the object.

    Example::

        sampler = MALASampler(step_size=0.1)
        out = sampler.sample(model, x_init, num_steps=200, generator=torch.Generator().manual_seed(0))
        out.sample, out.acceptance_rate
    """

    num_steps: int = 100

    def initial_state(self, model: EnergyModel, x: Tensor, num_steps: int) -> Any:
        """The state before the first of ``num_steps`` steps from ``x`` (B, ...); None unless overridden."""
        return None

    @abstractmethod
    def step(
        self, model: EnergyModel, x: Tensor, state: Any, generator: torch.Generator | None = None
    ) -> EnergyStepOutput:
        """One transition of the chain from ``x`` (B, ...), given the state returned with ``x``."""

    @classmethod
    def from_config(cls: type[E], config: Mapping[str, Any], **overrides: Any) -> E:
        """Build from a config; one saved before the 1.0 redesign is upgraded first.

        See :func:`thermogen.samplers.energy.old_configs.upgrade_config`: ``steps`` is read as
        ``num_steps``, ``sgld`` with ``form="book"`` drops ``form``, and ``sgld`` with
        ``form="textbook"`` builds the ``ula`` sampler with a FutureWarning.
        """
        upgraded = upgrade_config(config)
        target: type[Any] = cls
        if upgraded.get("_class_name") != config.get("_class_name") and not inspect.isabstract(cls):
            target = registry.get("samplers", upgraded["_class_name"])  # the saved name now means another class
        # An old textbook-form sgld config builds a ULASampler even when asked of SGLDSampler (with a warning).
        return cast(E, super(EnergySampler, target).from_config(upgraded, **overrides))

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
        num_steps: int | None = None,
        generator: torch.Generator | None = None,
        snapshot_steps: Sequence[int] | None = None,
        callback: Callback | None = None,
        progress: bool = False,
    ) -> EnergySampleOutput:
        """Run ``num_steps`` transitions (default ``self.num_steps``) from ``x_init`` (B, ...).

        ``snapshot_steps`` are indices in ``[0, num_steps)``; the book's strip uses
        0, 1, 3, 5, 10, 30, 50, 100, 300, 999 for a 1000-step chain.
        """
        from tqdm.auto import tqdm

        total = self.num_steps if num_steps is None else check_positive_int("num_steps", num_steps)
        wanted = sorted(set(snapshot_steps or []))
        bad = [s for s in wanted if not 0 <= s < total]
        if bad:
            raise ValueError(f"snapshot_steps {bad} are outside [0, {total})")
        snapshots: list[Tensor] = []
        accepted_sum: Tensor | None = None
        x = x_init.detach()
        taken = 0
        with self.frozen(model):
            state = self.initial_state(model, x, total)
            for i in tqdm(range(total), desc=type(self).__name__, disable=not progress, leave=False):
                with torch.no_grad():  # no graph, so no detach: the sample stays the tensor its state describes
                    out = self.step(model, x, state, generator=generator)
                x, state = out.sample, out.state
                taken += 1
                if out.accepted is not None:
                    total_accepted = out.accepted.sum()
                    accepted_sum = total_accepted if accepted_sum is None else accepted_sum + total_accepted
                x, stop = apply_callback(callback, StepInfo(i, total, None, x))
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


def check_state(state: Any, expected: type[S], sampler: str) -> S:
    """``state`` if it is an ``expected``; else a TypeError saying where a state comes from."""
    if not isinstance(state, expected):
        raise TypeError(
            f"{sampler}.step got state {state!r:.80}; expected the {expected.__name__} that "
            "initial_state(model, x, num_steps) or the previous step returned"
        )
    return state


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float; ConfigError unless it is a finite number > 0."""
    return check_number(name, value, low=0.0, low_inclusive=False)
