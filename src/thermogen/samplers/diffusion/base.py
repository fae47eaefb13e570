"""The diffusion-sampler family: reverse a noise schedule with a denoiser.

A sampler object is configuration only (its constructor arguments). What one
loop needs is explicit and passed along: the :class:`TimeGrid` (times and
rates, built once), and a per-loop ``state`` (a multistep history, or None)
that every step returns for the next one. So one sampler object can run any
number of loops, interleaved or in parallel.

Two ways to write the loop, both first-class:

* **diffusers style** (the caller evaluates the model, e.g. to add guidance),
  for samplers with one model evaluation per step::

      grid = sampler.grid(schedule, num_steps=20)
      state = sampler.initial_state(grid)
      x = x_T
      for i in range(grid.num_steps):
          denoised = model.denoise(x, *grid.rates(i))              # x0^ and eps^ at times[i]
          out = sampler.step(denoised, grid, i, x, state, generator=g)
          x, state = out.prev_sample, out.state

* **denoiser style** (k-diffusion's): the sampler calls a *denoiser*, any
  callable ``(x_t, signal_rate, noise_rate) -> Denoised`` (``model.denoise`` is
  one), as often as its method needs; every sampler supports it::

      out = sampler.sample(model.denoise, x_T, sampler.grid(schedule, 20), generator=g)
      # or step by step: out = sampler.solve_step(model.denoise, grid, i, x, state, generator=g)

A sampler never sees the model's ``prediction_type``: the denoiser converts the
network's output (see :mod:`thermogen.parameterisation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.interfaces import NoisePredictor, NoiseSchedule, Sampler
from thermogen.parameterisation import Denoised
from thermogen.samplers.callbacks import Callback, StepInfo, apply_callback
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.spacing import FinalTime, Spacing, check_spacing, timestep_grid

Denoiser = Callable[[Tensor, float, float], Denoised]
"""``(x_t (B, ...), signal_rate, noise_rate) -> Denoised``: what a sampler asks about a noisy sample."""

GeneratorLike = torch.Generator | Sequence[torch.Generator] | None


@dataclass(frozen=True)
class DiffusionStepOutput:
    """Result of one reverse step.

    Attributes:
        prev_sample: x at the earlier time ``times[i + 1]``, same shape and dtype as the input sample.
        pred_original_sample: the step's (latest) estimate of clean data x_0.
        state: the loop state to hand to the next step (None for samplers without history).

    Example::

        out = sampler.step(model.denoise(x, *grid.rates(i)), grid, i, x, state)
        x, state = out.prev_sample, out.state
    """

    prev_sample: Tensor
    pred_original_sample: Tensor
    state: Any = None


@dataclass(frozen=True)
class DiffusionSampleOutput:
    """Result of a whole sampling loop.

    Attributes:
        sample: x at the last time reached.
        pred_original_sample: the last estimate of x_0 (the book returns this).
        trajectory: if asked for, the samples after each step, (steps + 1, B, ...) starting with x_T.
        times: the float64 times visited, (steps + 1,), on the host (CPU).

    Example::

        out = sampler.sample(model, x_T, sampler.grid(schedule, 20), return_trajectory=True)
        out.trajectory.shape                    # (21, B, ...), x_T first
    """

    sample: Tensor
    pred_original_sample: Tensor
    trajectory: Tensor | None
    times: Tensor


class DiffusionSampler(Sampler):
    """Base class of samplers that reverse a :class:`NoiseSchedule`.

    A subclass implements :meth:`step` (one model evaluation per step: it
    receives the :class:`Denoised` pair at ``times[i]``) or, for methods that
    evaluate the model several times per step (Heun), :meth:`solve_step`
    (it receives the denoiser). Per-loop data (a history of estimates, planned
    coefficients) goes in the value :meth:`initial_state` returns, never on ``self``.

    Example::

        class Midpoint(DiffusionSampler):           # registered under thermogen.samplers
            evaluations_per_step = 2

            def __init__(self, spacing: str = "uniform") -> None:
                self.set_grid_options(spacing)

            def solve_step(self, denoiser, grid, i, sample, state=None, generator=None):
                ...                                  # call denoiser(x, a, s) twice
    """

    registry_kind: ClassVar[str] = "samplers"  # DiffusionSampler.from_config(config) builds the class it names
    spacing: Spacing = "uniform"
    final_time: FinalTime = "zero"
    steps_offset: int = 0
    timesteps: tuple[float, ...] | None = None
    evaluations_per_step: int = 1
    """How many denoiser calls one :meth:`solve_step` costs (at most; the last step may need fewer)."""

    def set_grid_options(
        self,
        spacing: Spacing = "uniform",
        final_time: FinalTime = "zero",
        steps_offset: int = 0,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        """Validate and store the grid options every diffusion sampler shares (call from ``__init__``)."""
        check_spacing(spacing, final_time, steps_offset, timesteps)
        self.timesteps = tuple(float(t) for t in timesteps) if timesteps is not None else None
        self.spacing = spacing
        self.final_time = final_time
        self.steps_offset = steps_offset

    def grid(self, schedule: NoiseSchedule, num_steps: int) -> TimeGrid:
        """The times to visit on ``schedule`` in ``num_steps`` steps, and the rates there.

        Uses the sampler's ``spacing``, ``final_time``, ``steps_offset`` and
        ``timesteps`` (see :mod:`thermogen.samplers.diffusion.spacing`).
        """
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"num_steps={num_steps!r}; expected a positive integer")
        times = timestep_grid(schedule, num_steps, self.spacing, self.final_time, self.steps_offset, self.timesteps)
        return TimeGrid.from_times(schedule, times)

    def initial_state(self, grid: TimeGrid) -> Any:
        """The state before step 0 of a loop over ``grid`` (None: no history). Multistep samplers override."""
        return None

    def step(
        self,
        denoised: Denoised,
        grid: TimeGrid,
        i: int,
        sample: Tensor,
        state: Any = None,
        generator: GeneratorLike = None,
    ) -> DiffusionStepOutput:
        """Step ``i``: move ``sample`` from ``grid.times[i]`` to ``grid.times[i + 1]``.

        ``denoised`` is the denoiser's answer at (``sample``, ``times[i]``); ``state`` is
        what the previous step returned (:meth:`initial_state` for step 0).
        Only samplers with one model evaluation per step implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} evaluates the model {self.evaluations_per_step} times per step: "
            "call solve_step(denoiser, grid, i, sample, state) or sample(denoiser, ...) instead of step"
        )

    def solve_step(
        self,
        denoiser: Denoiser,
        grid: TimeGrid,
        i: int,
        sample: Tensor,
        state: Any = None,
        generator: GeneratorLike = None,
    ) -> DiffusionStepOutput:
        """Step ``i`` with the sampler calling ``denoiser`` itself (default: once, then :meth:`step`)."""
        return self.step(denoiser(sample, *grid.rates(i)), grid, i, sample, state, generator)

    @staticmethod
    def randn_like(sample: Tensor, generator: GeneratorLike) -> Tensor:
        """Standard normal noise of ``sample``'s shape, dtype and device, drawn from ``generator``.

        A generator on another device (a CPU generator for a GPU sample) draws
        there and the noise is copied over, so results do not depend on the device.
        A list of B generators (as in diffusers) draws row i of the noise from
        generator i, so each sample depends on its own generator only.
        """
        if isinstance(generator, (list, tuple)):
            if len(generator) != sample.shape[0]:
                raise ValueError(
                    f"{len(generator)} generators for a batch of {sample.shape[0]}; expected one per sample"
                )
            rows = [DiffusionSampler.randn_like(row[None], g) for row, g in zip(sample, generator)]
            return torch.cat(rows)
        device = generator.device if isinstance(generator, torch.Generator) else sample.device
        noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=device)  # type: ignore[arg-type]
        return noise.to(sample.device)

    # -- the whole loop ----------------------------------------------------------

    @torch.inference_mode()
    def sample(
        self,
        denoiser: Denoiser | NoisePredictor,
        x_T: Tensor,
        grid: TimeGrid,
        generator: GeneratorLike = None,
        callback: Callback | None = None,
        return_trajectory: bool = False,
        progress: bool = False,
    ) -> DiffusionSampleOutput:
        """Run the reverse process from ``x_T`` (B, ...) over ``grid`` (from :meth:`grid`).

        Args:
            denoiser: ``(x_t, signal_rate, noise_rate) -> Denoised``; a :class:`NoisePredictor` stands for
                its ``denoise`` method.
            x_T: the starting noise, usually N(0, I).
            grid: the times to visit (``self.grid(schedule, num_steps)``).
            generator: randomness for stochastic samplers (a list of B generators: one per sample).
            callback: see :mod:`thermogen.samplers.callbacks`.
            return_trajectory: keep every intermediate sample (memory: steps x batch).
            progress: show a tqdm progress bar.
        """
        from tqdm.auto import tqdm

        if isinstance(denoiser, NoisePredictor):
            denoiser = denoiser.denoise
        state = self.initial_state(grid)
        x = pred_x0 = x_T
        trajectory = [x_T] if return_trajectory else None
        taken = 0
        for i in tqdm(range(grid.num_steps), desc=type(self).__name__, disable=not progress, leave=False):
            out = self.solve_step(denoiser, grid, i, x, state, generator)
            x, pred_x0, state = out.prev_sample, out.pred_original_sample, out.state
            taken = i + 1
            x, stop = apply_callback(callback, StepInfo(i, grid.num_steps, grid.times[i + 1], x, pred_x0))
            if trajectory is not None:
                trajectory.append(x)
            if stop:
                break
        stacked = torch.stack(trajectory) if trajectory is not None else None
        times = torch.tensor(grid.times[: taken + 1], dtype=torch.float64)
        return DiffusionSampleOutput(sample=x, pred_original_sample=pred_x0, trajectory=stacked, times=times)
