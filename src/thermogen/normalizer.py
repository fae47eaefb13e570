"""Per-channel standardisation of images, fitted on the training data (the book's Normalization layer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor

from thermogen.config import Configurable


class Normalizer(Configurable):
    """``normalize(x) = (x - mean) / std`` per channel; :meth:`denormalize` is its inverse.

    Images in [0, 1] become roughly zero-mean, unit-variance, like the noise
    they are mixed with. ``mean`` and ``std`` have one entry per channel.

    Example::

        normalizer = Normalizer.fit(MNIST(preprocess="diffusion").images)   # exact per-channel mean and std
        x0 = normalizer.normalize(images)                    # (B, 1, 32, 32) in [0, 1] -> what the model sees
        images = normalizer.denormalize(x0)                  # and back (no clipping)
    """

    registry_kind: ClassVar[str] = "components"

    def __init__(self, mean: Sequence[float] = (0.5,), std: Sequence[float] = (0.5,)) -> None:
        if len(mean) != len(std) or not mean:
            raise ValueError(f"mean {list(mean)} and std {list(std)} must be non-empty and of equal length")
        if any(s <= 0 for s in std):
            raise ValueError(f"std {list(std)} must be positive")
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    @property
    def channels(self) -> int:
        return len(self.mean)

    @classmethod
    def fit(cls, images: Tensor, chunk: int = 4096) -> Normalizer:
        """Exact per-channel mean and std (float64) of ``images`` (N, C, H, W)."""
        if images.ndim != 4:
            raise ValueError(f"images have shape {tuple(images.shape)}; expected (N, C, H, W)")
        total = torch.zeros(images.shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for start in range(0, images.shape[0], chunk):
            block = images[start : start + chunk].to(torch.float64)
            total += block.sum(dim=(0, 2, 3))
            squares += (block**2).sum(dim=(0, 2, 3))
        count = images.shape[0] * images.shape[2] * images.shape[3]
        mean = total / count
        std = (squares / count - mean**2).clamp_min(1e-12).sqrt()
        return cls(mean.tolist(), std.tolist())

    def _stats(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(f"images have shape {tuple(x.shape)}; the normalizer expects {self.channels} channels")
        shape = (1, self.channels) + (1,) * (x.ndim - 2)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).reshape(shape)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).reshape(shape)
        return mean, std

    def normalize(self, x: Tensor) -> Tensor:
        """(B, C, ...) images -> standardised values."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        """Inverse of :meth:`normalize` (no clipping)."""
        mean, std = self._stats(x)
        return x * std + mean
