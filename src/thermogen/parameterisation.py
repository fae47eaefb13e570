"""What a noise predictor's output means: its ``prediction_type``, and the (x_0, epsilon) pair it implies.

With ``x_t = a x_0 + s eps`` (a = signal rate, s = noise rate, a² + s² = 1) a
network trained on one target tells both unknowns of that equation:

* ``"epsilon"`` (Ho et al. 2020): ``eps^ = output``, ``x0^ = (x_t - s eps^) / a``;
* ``"sample"``: ``x0^ = output``, ``eps^ = (x_t - a x0^) / s``;
* ``"v"`` (Salimans & Ho 2022, eq. 8, ``v = a eps - s x_0``): ``x0^ = a x_t - s v``,
  ``eps^ = s x_t + a v``.

The prediction type belongs to the model (it is what the network was trained
to output, saved in its config); samplers receive the :class:`Denoised` pair
and never see it, so swapping samplers cannot change what a model means.

Ends of a schedule: where ``a = 0`` (zero terminal SNR) an epsilon prediction
says nothing about x_0, and where ``s = 0`` a sample prediction says nothing
about epsilon; there the conversions divide by :data:`MIN_RATE` = 2^-12
(diffusers floors alpha_bar at 2^-24 for the same reason), so no NaN or inf
appears. A rate that is small but not zero is divided by exactly, as diffusers
does, down to :func:`rate_floor` of the sample's dtype: below it the rounding
error of ``x_t - s eps`` (about eps_dtype |x_t|), divided by the rate, would
exceed |x_t| / 128.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from thermogen.errors import ConfigError

PredictionType = Literal["epsilon", "sample", "v"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "sample", "v")

MIN_RATE = 2.0**-12
"""Floor of the signal and noise rates where a conversion divides by them (2^-12 = sqrt(2^-24))."""


@dataclass(frozen=True)
class Denoised:
    """A denoiser's answer about a noisy sample ``x_t = a x_0 + s eps``: both unknowns, each shaped like x_t.

    Attributes:
        x0: the estimate of clean data x_0.
        eps: the estimate of the noise epsilon.

    Example::

        denoised = model.denoise(x_t, signal_rate=0.6, noise_rate=0.8)   # a NoisePredictor
        x0, eps = denoised.x0, denoised.eps
    """

    x0: Tensor
    eps: Tensor


def check_prediction_type(value: object) -> PredictionType:
    """``value`` if it is one of :data:`PREDICTION_TYPES`, else ConfigError naming it."""
    if value not in PREDICTION_TYPES:
        raise ConfigError(f"prediction_type={value!r}; expected one of {list(PREDICTION_TYPES)}")
    return value  # type: ignore[return-value]


def rate_floor(dtype: torch.dtype) -> float:
    """The smallest rate a conversion divides by in ``dtype``: ``min(2^-12, 2^7 eps_dtype)``.

    2^-45 in float64, 2^-16 in float32, 2^-12 (:data:`MIN_RATE`) in float16 and bfloat16.
    """
    return min(MIN_RATE, 128.0 * torch.finfo(dtype).eps)


def safe_rate(rate: float, dtype: torch.dtype) -> float:
    """``rate`` as a divisor: :data:`MIN_RATE` where it is 0, at least :func:`rate_floor` otherwise."""
    return max(rate, rate_floor(dtype)) if rate > 0.0 else MIN_RATE


def denoised_from_output(
    output: Tensor, prediction_type: str, sample: Tensor, signal_rate: float, noise_rate: float
) -> Denoised:
    """Turn a network's ``output`` at ``x_t = sample`` into (x0^, eps^) by the equations above.

    Args:
        output: the network's prediction, shaped like ``sample`` (B, ...).
        prediction_type: "epsilon", "sample" or "v".
        sample: x_t (B, ...).
        signal_rate: a = signal_rate(t), a Python float.
        noise_rate: s = noise_rate(t), a Python float.
    """
    a, s = signal_rate, noise_rate
    if prediction_type == "epsilon":
        return Denoised(x0=(sample - s * output) / safe_rate(a, sample.dtype), eps=output)
    if prediction_type == "sample":
        return Denoised(x0=output, eps=(sample - a * output) / safe_rate(s, sample.dtype))
    if prediction_type == "v":
        return Denoised(x0=a * sample - s * output, eps=s * sample + a * output)
    raise ConfigError(f"prediction_type={prediction_type!r}; expected one of {list(PREDICTION_TYPES)}")
