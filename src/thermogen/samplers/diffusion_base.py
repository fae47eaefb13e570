"""The diffusion-sampler family: reverse a noise schedule with a noise predictor.

Step-wise use (the loop that :meth:`DiffusionSampler.sample` runs)::

    times = sampler.set_timesteps(schedule, num_steps=20)      # float64, (21,), from ~1 down to the end
    x = x_T
    for t, t_prev in zip(times[:-1], times[1:]):
        model_output = model(x, sampler.noise_level(t, x))     # noise_level = noise_rate(t), shape (B,)
        x = sampler.step(model_output, t, t_prev, x, generator=g).prev_sample

``set_timesteps`` binds the schedule and clears any multistep history, so one
sampler object runs one loop at a time.

No host-device syncs: the times stay on the host (CPU float64), and
``set_timesteps`` caches the schedule's rates at every grid time as Python
floats, so a step reads its coefficients without touching the device
(:meth:`DiffusionSampler.host_rates`); the per-step scalars reach the kernels
as Python numbers. Passing times that live on an accelerator works but costs
one sync per step (``float(t)``).

Ends of a schedule: where ``signal_rate = 0`` (zero terminal SNR) an
epsilon prediction says nothing about x_0, and where ``noise_rate = 0``
(alpha_bar(0) = 1) a sample prediction says nothing about epsilon; there the
conversions divide by :data:`MIN_RATE` = 2^-12 (diffusers floors alpha_bar at
2^-24 for the same reason), so no NaN or inf appears. A rate that is small but
not zero is divided by exactly, as diffusers does (``improved_cosine`` has a
signal rate of 4.9e-5 at t = 1), down to :func:`rate_floor` of the sample's
dtype: below it the rounding error of ``x_t - s eps`` (about eps_dtype |x_t|),
divided by the rate, would exceed |x_t| / 128 (the book's ``cosine`` has a
signal rate of 6e-17 at t = 1).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import torch
from torch import Tensor

from thermogen.errors import ConfigError
from thermogen.interfaces import NoisePredictor, NoiseSchedule, Sampler
from thermogen.samplers.callbacks import Callback, StepInfo, apply_callback
from thermogen.samplers.spacing import FinalTime, Spacing, check_spacing, timestep_grid

PredictionType = Literal["epsilon", "sample", "v"]
PREDICTION_TYPES = ("epsilon", "sample", "v")

MIN_RATE = 2.0**-12
"""Floor of the signal and noise rates where a conversion divides by them (2^-12 = sqrt(2^-24))."""


def rate_floor(dtype: torch.dtype) -> float:
    """The smallest rate a conversion divides by in ``dtype``: ``min(2^-12, 2^7 eps_dtype)``.

    2^-45 in float64, 2^-16 in float32, 2^-12 (:data:`MIN_RATE`) in float16 and bfloat16.
    """
    return min(MIN_RATE, 128.0 * torch.finfo(dtype).eps)


def safe_rate(rate: float, dtype: torch.dtype) -> float:
    """``rate`` as a divisor: :data:`MIN_RATE` where it is 0, at least :func:`rate_floor` otherwise."""
    return max(rate, rate_floor(dtype)) if rate > 0.0 else MIN_RATE


def _on_host(t: Tensor | float) -> bool:
    """One time held on the host: a Python number or a one-element CPU tensor."""
    return isinstance(t, (int, float)) or (t.numel() == 1 and t.device.type == "cpu")


def check_prediction_type(value: str) -> None:
    """Raise ConfigError unless ``value`` is one of :data:`PREDICTION_TYPES`."""
    if value not in PREDICTION_TYPES:
        raise ConfigError(f"prediction_type={value!r}; expected one of {list(PREDICTION_TYPES)}")


@dataclass(frozen=True)
class DiffusionStepOutput:
    """Result of one reverse step.

    Attributes:
        prev_sample: x at the earlier time ``t_prev``, same shape and dtype as the input sample.
        pred_original_sample: the step's estimate of clean data x_0.
    """

    prev_sample: Tensor
    pred_original_sample: Tensor


@dataclass(frozen=True)
class DiffusionSampleOutput:
    """Result of a whole sampling loop.

    Attributes:
        sample: x at the last time reached.
        pred_original_sample: the last estimate of x_0 (the book returns this).
        trajectory: if asked for, the samples after each step, (steps + 1, B, ...) starting with x_T.
        times: the float64 times visited, (steps + 1,), on the host (CPU).
    """

    sample: Tensor
    pred_original_sample: Tensor
    trajectory: Tensor | None
    times: Tensor


class DiffusionSampler(Sampler):
    """Base class of samplers that reverse a :class:`NoiseSchedule`.

    Subclasses implement :meth:`step` (and :meth:`set_timesteps` if the time
    grid is special); they set ``self.prediction_type`` in ``__init__``.
    """

    prediction_type: PredictionType = "epsilon"
    spacing: Spacing = "uniform"
    final_time: FinalTime = "zero"
    steps_offset: int = 0
    timesteps: tuple[float, ...] | None = None
    schedule: NoiseSchedule | None = None
    _host_rates: dict[float, tuple[float, float]] | None = None
    host_times: tuple[float, ...] = ()
    """The grid of the last :meth:`set_timesteps` as Python floats (for host-side decisions such as the last step)."""
    grid_index: Mapping[float, int] = MappingProxyType({})
    """Position of each time of ``host_times`` in the grid (a step ending at ``t_prev`` is step ``index - 1``)."""

    def set_grid_options(
        self,
        spacing: Spacing,
        final_time: FinalTime,
        steps_offset: int,
        prediction_type: PredictionType,
        timesteps: Sequence[float] | None = None,
    ) -> None:
        """Validate and store the options every diffusion sampler shares (call from ``__init__``)."""
        check_spacing(spacing, final_time, steps_offset, timesteps)
        check_prediction_type(prediction_type)
        self.timesteps = tuple(float(t) for t in timesteps) if timesteps is not None else None
        self.spacing = spacing
        self.final_time = final_time
        self.steps_offset = steps_offset
        self.prediction_type = prediction_type

    def timestep_grid(self, schedule: NoiseSchedule, num_steps: int) -> Tensor:
        """The float64 times to visit, (num_steps + 1,), decreasing, from the start to the end time.

        Uses the sampler's ``spacing``, ``final_time`` and ``steps_offset`` (see
        :mod:`thermogen.samplers.spacing`); override for a special grid.
        """
        return timestep_grid(schedule, num_steps, self.spacing, self.final_time, self.steps_offset, self.timesteps)

    @abstractmethod
    def step(
        self,
        model_output: Tensor,
        t: Tensor,
        t_prev: Tensor,
        sample: Tensor,
        generator: torch.Generator | None = None,
    ) -> DiffusionStepOutput:
        """Move ``sample`` from time ``t`` to the earlier time ``t_prev`` (0-dim float64 host tensors, or floats)."""

    def reset(self) -> None:
        """Clear multistep history (called by :meth:`set_timesteps`)."""

    @property
    def model_evaluations_per_step(self) -> int:
        """How many model calls one step of :meth:`sample` costs."""
        return 1

    def model_step(
        self,
        model: NoisePredictor | torch.nn.Module,
        t: Tensor,
        t_prev: Tensor,
        sample: Tensor,
        generator: torch.Generator | None = None,
    ) -> DiffusionStepOutput:
        """One step of :meth:`sample`: evaluate the model and call :meth:`step`.

        Samplers needing several evaluations per step (Heun) override this.
        """
        return self.step(model(sample, self.noise_level(t, sample)), t, t_prev, sample, generator=generator)

    def set_timesteps(
        self, schedule: NoiseSchedule, num_steps: int, device: torch.device | str | None = None
    ) -> Tensor:
        """Bind ``schedule``, reset history, return the times to visit (float64, (num_steps + 1,)).

        Keep the default ``device=None`` (host memory) for a sync-free loop: steps
        read their coefficients from the host copy of each time.
        """
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"num_steps={num_steps!r}; expected a positive integer")
        self.schedule = schedule
        self.reset()
        times = self.timestep_grid(schedule, num_steps).to(device="cpu", dtype=torch.float64)
        signal, noise = schedule.rates64(times)
        self.host_times = tuple(times.tolist())
        self._host_rates = {t: (a, s) for t, a, s in zip(self.host_times, signal.tolist(), noise.tolist())}
        self.grid_index = {t: i for i, t in enumerate(self.host_times)}
        self.prepare_grid()
        return times.to(device=device)

    def prepare_grid(self) -> None:
        """Hook run by :meth:`set_timesteps` once the grid is known: precompute per-step coefficients here."""

    def bound_schedule(self) -> NoiseSchedule:
        if self.schedule is None:
            raise RuntimeError(f"{type(self).__name__}.step called before set_timesteps(schedule, num_steps)")
        return self.schedule

    def host_rates(self, t: Tensor | float) -> tuple[float, float]:
        """``(signal_rate(t), noise_rate(t))`` as Python floats, for one time ``t``.

        Times of the grid from :meth:`set_timesteps` are looked up (no tensor
        op); other times are computed in float64 on the host.
        """
        key = float(t)
        cached = self._host_rates.get(key) if self._host_rates is not None else None
        if cached is not None:
            return cached
        if not (math.isfinite(key) and 0.0 <= key <= 1.0):
            raise ValueError(f"diffusion time t={key!r} is outside [0, 1]")
        signal, noise = self.bound_schedule().rates64(torch.tensor([key], dtype=torch.float64))
        return float(signal), float(noise)

    def noise_level(self, t: Tensor | float, sample: Tensor) -> Tensor:
        """The model's conditioning at time ``t``: ``noise_rate(t)`` in the sample's dtype, shape (B,)."""
        if _on_host(t):
            return torch.full((sample.shape[0],), self.host_rates(t)[1], dtype=sample.dtype, device=sample.device)
        level = self.bound_schedule().noise_rate(t, like=sample)
        return level.reshape(-1).expand(sample.shape[0]) if level.numel() == 1 else level.reshape(sample.shape[0])

    def predict_x0_and_eps(self, model_output: Tensor, t: Tensor | float, sample: Tensor) -> tuple[Tensor, Tensor]:
        """Convert the model's output at time ``t`` into (x_0, epsilon) estimates.

        With ``x_t = a x_0 + s eps`` (a = signal rate, s = noise rate):
        epsilon-prediction gives x_0 = (x_t - s eps) / a; sample-prediction
        gives eps = (x_t - a x_0) / s; v-prediction (v = a eps - s x_0) gives
        x_0 = a x_t - s v and eps = s x_t + a v. The divisors go through
        :func:`safe_rate`. ``t`` is one time (host tensor or float) or one per
        sample, shape (B,).
        """
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type={self.prediction_type!r}; expected 'epsilon', 'sample' or 'v'")
        if _on_host(t):
            a, s = self.host_rates(t)
            if self.prediction_type == "epsilon":
                return torch.add(sample, model_output, alpha=-s).div_(safe_rate(a, sample.dtype)), model_output
            if self.prediction_type == "sample":
                return model_output, torch.add(sample, model_output, alpha=-a).div_(safe_rate(s, sample.dtype))
            return torch.mul(sample, a).add_(model_output, alpha=-s), torch.mul(sample, s).add_(model_output, alpha=a)
        signal, noise = self.bound_schedule().rates(t, like=sample)
        floor = rate_floor(sample.dtype)
        if self.prediction_type == "epsilon":
            divisor = torch.where(signal > 0, signal.clamp(min=floor), MIN_RATE)
            return (sample - noise * model_output) / divisor, model_output
        if self.prediction_type == "sample":
            divisor = torch.where(noise > 0, noise.clamp(min=floor), MIN_RATE)
            return model_output, (sample - signal * model_output) / divisor
        return signal * sample - noise * model_output, noise * sample + signal * model_output

    @staticmethod
    def randn_like(sample: Tensor, generator: torch.Generator | None) -> Tensor:
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
        device = generator.device if generator is not None else sample.device
        noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=device)
        return noise.to(sample.device)

    # -- the whole loop ----------------------------------------------------------

    @torch.inference_mode()
    def sample(
        self,
        model: NoisePredictor | torch.nn.Module,
        x_T: Tensor,
        num_steps: int,
        schedule: NoiseSchedule,
        generator: torch.Generator | None = None,
        callback: Callback | None = None,
        return_trajectory: bool = False,
        progress: bool = True,
    ) -> DiffusionSampleOutput:
        """Run the reverse process from ``x_T`` (B, ...) over ``num_steps`` steps.

        Args:
            model: maps (x (B, ...), noise_level (B,)) to the prediction named by ``prediction_type``.
            x_T: the starting noise, usually N(0, I).
            num_steps: number of steps (model evaluations: ``num_steps * model_evaluations_per_step``).
            schedule: the noise schedule the model was trained with (or any other).
            generator: randomness for stochastic samplers.
            callback: see :mod:`thermogen.samplers.callbacks`.
            return_trajectory: keep every intermediate sample (memory: steps x batch).
            progress: show a tqdm progress bar.
        """
        from tqdm.auto import tqdm

        times = self.set_timesteps(schedule, num_steps)  # host times: steps read host coefficients, no syncs
        x = x_T
        pred_x0 = x_T
        trajectory = [x_T] if return_trajectory else None
        steps = tqdm(range(num_steps), desc=type(self).__name__, disable=not progress, leave=False)
        for i in steps:
            t, t_prev = times[i], times[i + 1]
            out = self.model_step(model, t, t_prev, x, generator)
            x, pred_x0 = out.prev_sample, out.pred_original_sample
            x, stop = apply_callback(callback, StepInfo(i, num_steps, t_prev, x, pred_x0))
            if trajectory is not None:
                trajectory.append(x)
            if stop:
                times = times[: i + 2]
                break
        stacked = torch.stack(trajectory) if trajectory is not None else None
        return DiffusionSampleOutput(sample=x, pred_original_sample=pred_x0, trajectory=stacked, times=times)
