"""Keeping the x_0 estimate in range: static clipping and Imagen's dynamic thresholding.

* ``clip_sample = c``: ``x_0 <- clamp(x_0, -c, c)`` (DDPM's and DDIM's ``clip_sample``).
* ``dynamic_threshold = p`` (Saharia et al. 2022, "Imagen", section 2.3): per sample,
  ``s = quantile(|x_0|, p)`` clamped to ``[1, sample_max_value]``; then
  ``x_0 <- clamp(x_0, -s, s) / s``. Pixels that would saturate are pushed
  inwards instead. ``sample_max_value=None`` leaves ``s`` uncapped (Imagen);
  diffusers' default cap 1.0 makes it a plain clip to [-1, 1].

Dynamic thresholding takes precedence over clipping, as in diffusers. Both
touch only the x_0 estimate; the epsilon estimate is kept as the model gave it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from thermogen.checks import check_number


def check_x0_options(
    clip_sample: float | None, dynamic_threshold: float | None, sample_max_value: float | None
) -> None:
    """Validate the constructor arguments (ConfigError naming the bad value)."""
    if clip_sample is not None:
        check_number("clip_sample", clip_sample, low=0.0, low_inclusive=False)
    if dynamic_threshold is not None:
        check_number("dynamic_threshold", dynamic_threshold, 0.0, 1.0, low_inclusive=False)
    if sample_max_value is not None:
        check_number("sample_max_value", sample_max_value, low=1.0)


def process_x0(
    x0: Tensor, clip_sample: float | None, dynamic_threshold: float | None, sample_max_value: float | None
) -> Tensor:
    """Apply dynamic thresholding, else clipping, else nothing; x0 (B, ...) -> same shape and dtype."""
    if dynamic_threshold is not None:
        return threshold(x0, dynamic_threshold, sample_max_value)
    if clip_sample is not None:
        return x0.clamp(-clip_sample, clip_sample)
    return x0


def threshold(x0: Tensor, quantile: float, sample_max_value: float | None = None) -> Tensor:
    """Imagen's dynamic thresholding of x0 (B, ...), per sample; computed in float32 or float64."""
    flat = x0.reshape(x0.shape[0], -1)
    if flat.dtype not in (torch.float32, torch.float64):
        flat = flat.float()  # torch.quantile needs float32/64
    s = torch.quantile(flat.abs(), quantile, dim=1, keepdim=True).clamp(min=1.0, max=sample_max_value)
    return (torch.clamp(flat, -s, s) / s).reshape(x0.shape).to(x0.dtype)


class ClipsX0:
    """Mixin of samplers with the options above: ``clip_sample``, ``dynamic_threshold``, ``sample_max_value``.

    Example::

        class Clipped(ClipsX0, DiffusionSampler):
            def __init__(self, clip_sample: float | None = 1.0) -> None:
                self.set_grid_options("uniform")
                self.set_x0_options(clip_sample, None, None)

            def step(self, denoised, grid, i, sample, state=None, generator=None):
                x0 = self.limited_x0(denoised.x0)
                ...
    """

    clip_sample: float | None = None
    dynamic_threshold: float | None = None
    sample_max_value: float | None = None

    def set_x0_options(
        self, clip_sample: float | None, dynamic_threshold: float | None, sample_max_value: float | None
    ) -> None:
        """Validate (ConfigError naming the bad value) and store the three options (call from ``__init__``)."""
        check_x0_options(clip_sample, dynamic_threshold, sample_max_value)
        self.clip_sample = clip_sample
        self.dynamic_threshold = dynamic_threshold
        self.sample_max_value = sample_max_value

    def limited_x0(self, x0: Tensor) -> Tensor:
        """The x_0 estimate after dynamic thresholding or clipping (as configured), same shape and dtype."""
        return process_x0(x0, self.clip_sample, self.dynamic_threshold, self.sample_max_value)
