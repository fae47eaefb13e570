"""The denoising loss: regression target, per-sample weighting, and the loss itself.

Notation (variance preserving, see :mod:`thermogen.interfaces`):
``x_t = a x_0 + s eps`` with ``a = signal_rate(t)``, ``s = noise_rate(t)``,
``a^2 + s^2 = 1`` and ``SNR = a^2 / s^2``.

Targets (what the network is trained to output, its ``prediction_type``):

* ``"epsilon"``: ``eps`` (Ho et al. 2020);
* ``"v"``: ``v = a eps - s x_0`` (Salimans & Ho 2022, "Progressive Distillation", eq. 8 with
  alpha = a, sigma = s).

Weightings (a factor per sample on the per-sample loss):

* ``"none"``: 1;
* ``"min_snr"``: Min-SNR-gamma (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
  Weighting Strategy", section 3.4): ``min(SNR, gamma) / SNR`` for an ``epsilon`` target and
  ``min(SNR, gamma) / (SNR + 1)`` for a ``v`` target. Both equal ``min(SNR, gamma)`` times the
  weight that turns the target's error into the error of the x_0 estimate.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

PredictionTarget = Literal["epsilon", "v"]
LossWeighting = Literal["none", "min_snr"]
ErrorNorm = Literal["mae", "mse"]

PREDICTION_TARGETS: tuple[str, ...] = ("epsilon", "v")
LOSS_WEIGHTINGS: tuple[str, ...] = ("none", "min_snr")


def denoising_target(x0: Tensor, noise: Tensor, signal_rate: Tensor, noise_rate: Tensor, target: str) -> Tensor:
    """What a network of ``prediction_type = target`` should output for ``x_t = a x0 + s noise``.

    ``signal_rate`` / ``noise_rate`` broadcast against ``x0`` (e.g. shape (B, 1, 1, 1)).
    """
    if target == "epsilon":
        return noise
    if target == "v":
        return signal_rate * noise - noise_rate * x0
    raise ValueError(f"prediction target {target!r}; expected one of {list(PREDICTION_TARGETS)}")


def snr_weight(signal_rate: Tensor, noise_rate: Tensor, target: str, weighting: str, gamma: float = 5.0) -> Tensor:
    """Per-sample loss weights (B,) for rates of shape (B,) (or (B, 1, ...)), in float64.

    ``min_snr`` for ``epsilon`` is ``min(1, gamma / SNR)``, which is also defined where SNR = 0.
    """
    a = signal_rate.reshape(-1).double()
    s = noise_rate.reshape(-1).double()
    if weighting == "none":
        return torch.ones_like(a)
    if weighting != "min_snr":
        raise ValueError(f"loss weighting {weighting!r}; expected one of {list(LOSS_WEIGHTINGS)}")
    if not gamma > 0.0:
        raise ValueError(f"min-SNR gamma={gamma}; expected a positive number")
    snr = a**2 / s**2  # inf where s = 0
    if target == "epsilon":
        return torch.clamp(gamma / snr, max=1.0)
    if target == "v":
        return torch.clamp(snr, max=gamma) / (snr + 1.0)
    raise ValueError(f"prediction target {target!r}; expected one of {list(PREDICTION_TARGETS)}")


def denoising_loss(prediction: Tensor, target: Tensor, weight: Tensor, norm: str = "mae") -> Tensor:
    """``mean_b weight_b * mean_pixels err(prediction_b - target_b)``, err = |.| (``mae``) or (.)^2 (``mse``).

    ``prediction`` and ``target`` are (B, ...); ``weight`` is (B,). With unit weights this is
    the plain mean absolute / squared error over all elements.
    """
    difference = prediction.float() - target.float()
    if norm == "mae":
        per_sample = difference.abs().flatten(1).mean(dim=1)
    elif norm == "mse":
        per_sample = difference.square().flatten(1).mean(dim=1)
    else:
        raise ValueError(f"loss norm {norm!r}; expected 'mae' or 'mse'")
    return (weight.to(per_sample.dtype) * per_sample).mean()
