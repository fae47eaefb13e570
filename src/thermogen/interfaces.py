"""The four interfaces everything else plugs into.

Conventions (used everywhere in thermogen):

* **Time.** Continuous diffusion time ``t`` in [0, 1]; ``t = 0`` is data and
  ``t = 1`` is (almost) pure noise. ``x_t = signal_rate(t) * x_0 + noise_rate(t) * eps``
  with ``signal_rate**2 + noise_rate**2 = 1`` (variance preserving) and
  ``alpha_bar(t) = signal_rate(t)**2``. Integer step ``k`` of a ``T``-step
  discrete schedule is ``t = (k + 1) / T``.
* **Noise level.** A :class:`NoisePredictor` is conditioned on
  ``noise_level = noise_rate(t)`` (shape ``(B,)``), not on a schedule's integer
  timestep, so one trained network can be sampled with any schedule whose noise
  levels stay within those it was trained on (``trained_noise_levels``).
* **Energy.** Lower is more likely: ``p(x) ∝ exp(-E(x))`` and
  ``score(x) = -∇_x E(x)``.
* **Randomness.** Every stochastic function takes a ``torch.Generator | None``;
  library code never touches the global RNG.
* **Precision.** Schedules compute in float64 and cast to the sample's dtype at
  the point of use.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

from thermogen.checks import check_finite_number, check_in_range
from thermogen.config import Configurable
from thermogen.errors import ConfigError
from thermogen.parameterisation import Denoised, PredictionType, check_prediction_type, denoised_from_output

TimeLike = float | Tensor
TRAINED_NOISE_LEVELS = "_trained_noise_levels"
PREDICTION_TYPE = "prediction_type"
N = TypeVar("N", bound="NoisePredictor")


# ----------------------------------------------------------------------------
# Models


class EnergyModel(nn.Module, Configurable, ABC):
    """An energy function ``E: x (B, *sample_shape) -> (B,)``; lower energy = more likely.

    Subclasses implement :meth:`forward` and :attr:`sample_shape`. :meth:`score` and
    :meth:`energy_and_score` come from autograd (override them where a closed
    form is cheaper).

    Example::

        class Quadratic(EnergyModel):  # E(x) = |x|^2 / 2 on vectors of length 2: a standard normal
            sample_shape = (2,)

            def forward(self, x):
                return 0.5 * x.square().sum(dim=1)
    """

    registry_kind: ClassVar[str] = "models"

    @property
    @abstractmethod
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch dimension: (C, H, W) for images, (D,) for vectors.

        Pipelines draw their starting points in this shape.
        """

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Energy of each sample: x (B, *sample_shape) -> (B,), same dtype as x."""

    def energy_and_score(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(E(x), -∇_x E(x))``: shapes (B,) and x.shape. No graph is kept."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            energy = self(x)
            (grad,) = torch.autograd.grad(energy.sum(), x)
        return energy.detach(), -grad

    def score(self, x: Tensor) -> Tensor:
        """``-∇_x E(x)``, same shape as x (points towards more likely samples)."""
        return self.energy_and_score(x)[1]


class NoisePredictor(nn.Module, Configurable, ABC):
    """A denoiser network: ``(noisy (B, *sample_shape), noise_level (B,)) -> prediction``, shaped like ``noisy``.

    ``noise_level`` is the forward process's ``noise_rate(t)`` in [0, 1]. What
    the network predicts is its :attr:`prediction_type` (``"epsilon"``,
    ``"sample"`` or ``"v"``, see :mod:`thermogen.parameterisation`), part of the
    model's config: samplers receive the :class:`~thermogen.parameterisation.Denoised`
    pair from :meth:`denoise` and never see it.

    Subclasses implement :meth:`forward` and :attr:`sample_shape`.

    Example::

        class Tiny(NoisePredictor):
            def __init__(self, size: int = 8) -> None:
                super().__init__()
                self.size = size
                self.net = torch.nn.Linear(size, size)

            @property
            def sample_shape(self) -> tuple[int, ...]:
                return (self.size,)

            def forward(self, noisy, noise_level):
                return self.net(noisy)

        model = Tiny()
        model.set_prediction_type("v")          # saved as "prediction_type" in its config
        denoised = model.denoise(torch.randn(4, 8), signal_rate=0.6, noise_rate=0.8)
    """

    registry_kind: ClassVar[str] = "models"
    prediction_type: PredictionType = "epsilon"
    """What :meth:`forward` outputs: ``"epsilon"`` (default), ``"sample"`` (x_0) or ``"v"``."""
    trained_noise_levels: tuple[float, float] | None = None
    """(lowest, highest) noise level seen in training, saved in the config as ``_trained_noise_levels``
    (set by the trainer); pipelines warn when a sampling grid leaves it. None: unknown."""

    @abstractmethod
    def forward(self, noisy: Tensor, noise_level: Tensor) -> Tensor:
        """Predict from ``noisy`` (B, *sample_shape) at ``noise_level`` (B,)."""

    @property
    @abstractmethod
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample, without the batch dimension (an image model: ``(C, H, W)``)."""

    def denoise(self, noisy: Tensor, signal_rate: float, noise_rate: float) -> Denoised:
        """Evaluate at ``x_t = noisy`` (B, *sample_shape) and return both estimates ``(x0^, eps^)``.

        ``signal_rate`` and ``noise_rate`` are the schedule's rates at the time of
        ``noisy`` (Python floats); the network is conditioned on ``noise_rate``.
        This is a *denoiser*: the callable every diffusion sampler's
        :meth:`~thermogen.samplers.DiffusionSampler.sample` and ``solve_step`` take.
        """
        level = torch.full((noisy.shape[0],), noise_rate, dtype=noisy.dtype, device=noisy.device)
        return denoised_from_output(self(noisy, level), self.prediction_type, noisy, signal_rate, noise_rate)

    def set_prediction_type(self, prediction_type: str) -> None:
        """Declare what the network outputs ("epsilon", "sample" or "v"); the trainer sets it before training."""
        self.prediction_type = check_prediction_type(prediction_type)
        recorded = self.__dict__.get("_config")
        if recorded is not None and PREDICTION_TYPE in recorded:  # a subclass that takes it as an argument
            recorded[PREDICTION_TYPE] = self.prediction_type

    def set_trained_noise_levels(self, lowest: float, highest: float) -> None:
        """Record the noise-level range the network is trained on (both in [0, 1], lowest <= highest)."""
        low = check_finite_number("lowest trained noise level", lowest, ConfigError)
        high = check_finite_number("highest trained noise level", highest, ConfigError)
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError(f"trained noise levels ({low}, {high}); expected 0 <= lowest <= highest <= 1")
        self.trained_noise_levels = (low, high)

    def to_config(self) -> dict[str, Any]:
        config = super().to_config()
        config[PREDICTION_TYPE] = self.prediction_type
        if self.trained_noise_levels is not None:
            config[TRAINED_NOISE_LEVELS] = list(self.trained_noise_levels)
        return config

    @classmethod
    def from_config(cls: type[N], config: Mapping[str, Any], **overrides: Any) -> N:
        """Build the model; ``prediction_type`` and ``_trained_noise_levels`` are the base class's keys.

        A config without ``prediction_type`` (saved before it moved to the model) means ``"epsilon"``.
        """
        base_keys = (TRAINED_NOISE_LEVELS, PREDICTION_TYPE)
        merged = {**config, **overrides}
        model = super().from_config(
            {k: v for k, v in config.items() if k not in base_keys},
            **{k: v for k, v in overrides.items() if k not in base_keys},
        )
        model.set_prediction_type(merged.get(PREDICTION_TYPE, "epsilon"))
        levels = merged.get(TRAINED_NOISE_LEVELS)
        if levels is not None:
            if not isinstance(levels, (list, tuple)) or len(levels) != 2:
                raise ConfigError(f"{TRAINED_NOISE_LEVELS}={levels!r}; expected [lowest, highest]")
            model.set_trained_noise_levels(*levels)
        return model


# ----------------------------------------------------------------------------
# Noise schedules


class NoiseSchedule(Configurable, ABC):
    """Diffusion time t in [0, 1] -> (signal_rate, noise_rate), variance preserving.

    Subclasses implement :meth:`rates64` on float64 tensors. Every public method
    accepts ``t`` as a Python float or a tensor; with ``like`` (a sample) the
    result is cast to ``like``'s dtype and device and shaped to broadcast
    against it: a tensor ``t`` of shape ``(B,)`` for a sample of shape
    ``(B, ...)`` is treated as one time per sample, any other shape must
    broadcast by the usual rules.

    Example::

        @register("schedules", "linear_log_snr")
        class LinearLogSNR(NoiseSchedule):                   # log-SNR from +10 at t = 0 to -10 at t = 1
            def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
                log_snr = 10.0 - 20.0 * t
                return torch.sigmoid(log_snr).sqrt(), torch.sigmoid(-log_snr).sqrt()   # signal² + noise² = 1

        signal, noise = LinearLogSNR().rates(torch.rand(8), like=x0)   # each (8, 1, 1, 1) in x0's dtype
    """

    registry_kind: ClassVar[str] = "schedules"

    @abstractmethod
    def rates64(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(signal_rate(t), noise_rate(t))`` for float64 ``t`` in [0, 1], both float64, finite."""

    # -- public API ------------------------------------------------------------

    def signal_rate(self, t: TimeLike, like: Tensor | None = None) -> Tensor:
        """sqrt(alpha_bar(t)), in [0, 1], decreasing in t."""
        return _cast(self.rates64(_time64(t, like))[0], like)

    def noise_rate(self, t: TimeLike, like: Tensor | None = None) -> Tensor:
        """sqrt(1 - alpha_bar(t)), in [0, 1], increasing in t."""
        return _cast(self.rates64(_time64(t, like))[1], like)

    def rates(self, t: TimeLike, like: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Both rates at once: ``(signal_rate, noise_rate)``."""
        signal, noise = self.rates64(_time64(t, like))
        return _cast(signal, like), _cast(noise, like)

    def alpha_bar(self, t: TimeLike, like: Tensor | None = None) -> Tensor:
        """Cumulative signal variance ``signal_rate(t) ** 2``."""
        return _cast(self.rates64(_time64(t, like))[0] ** 2, like)

    def log_snr(self, t: TimeLike, like: Tensor | None = None) -> Tensor:
        """``log(signal_rate² / noise_rate²)``; +inf where the noise rate is 0, -inf where the signal is 0."""
        signal, noise = self.rates64(_time64(t, like))
        return _cast(2.0 * (torch.log(signal) - torch.log(noise)), like)

    def add_noise(self, x0: Tensor, noise: Tensor, t: TimeLike) -> Tensor:
        """Forward process ``x_t = signal_rate(t) * x0 + noise_rate(t) * noise`` (x0's dtype)."""
        signal, noise_rate = self.rates(t, like=x0)
        return signal * x0 + noise_rate * noise

    def time_from_log_snr(self, log_snr: Tensor, iterations: int = 64) -> Tensor:
        """Inverse of :meth:`log_snr` by bisection in float64 (log-SNR must be decreasing in t)."""
        target = log_snr.to(torch.float64)
        lo = torch.zeros_like(target)
        hi = torch.ones_like(target)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            signal, noise = self.rates64(mid)
            above = 2.0 * (torch.log(signal) - torch.log(noise)) > target
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return 0.5 * (lo + hi)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"


def _time64(t: TimeLike, like: Tensor | None) -> Tensor:
    if isinstance(t, Tensor):
        if t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"diffusion time t has dtype {t.dtype}; expected real times in [0, 1]")
        device = like.device if like is not None else t.device
        return check_in_range("diffusion time t", t.to(device=device, dtype=torch.float64), 0.0, 1.0)
    if not (isinstance(t, (int, float)) and math.isfinite(t) and 0.0 <= t <= 1.0):
        raise ValueError(f"diffusion time t={t!r} is outside [0, 1]")
    return torch.tensor(float(t), dtype=torch.float64, device=None if like is None else like.device)


def _cast(value: Tensor, like: Tensor | None) -> Tensor:
    if like is None:
        return value
    value = value.to(like.dtype)
    if value.ndim == 1 and like.ndim > 1 and value.shape[0] == like.shape[0]:
        value = value.reshape(-1, *([1] * (like.ndim - 1)))
    return value


# ----------------------------------------------------------------------------
# Samplers


class Sampler(Configurable, ABC):
    """An iterative procedure that turns an initial tensor into samples.

    Two families share this base: :class:`thermogen.samplers.DiffusionSampler`
    (reverses a noise schedule with a :class:`NoisePredictor`) and
    :class:`thermogen.samplers.EnergySampler` (Markov chains on an
    :class:`EnergyModel`). Each has a step-wise API for custom loops and a
    ``sample`` method that runs the whole loop.

    Example::

        sampler = Sampler.from_config({"_class_name": "ddim", "eta": 0.5})   # a DDIMSampler, by registered name
        sampler.config                                       # {"eta": 0.5, "spacing": "leading", ...}
        isinstance(sampler, DiffusionSampler), isinstance(HMCSampler(), EnergySampler)   # True, True
    """

    registry_kind: ClassVar[str] = "samplers"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"
