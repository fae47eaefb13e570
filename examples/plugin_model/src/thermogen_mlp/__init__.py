"""A tiny MLP noise predictor as a thermogen model plugin.

forward(noisy (B, C, H, W), noise_level (B,)) -> predicted noise (B, C, H, W): the image is
flattened, the noise level appended, two hidden layers, reshaped back.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from thermogen import NoisePredictor


class MLPDenoiser(NoisePredictor):
    """MLP on flattened images of shape (in_channels, image_size, image_size)."""

    conformance: ClassVar[dict[str, Any]] = {"config": {"image_size": 4, "hidden": 16}}

    def __init__(self, in_channels: int = 1, image_size: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        size = in_channels * image_size * image_size
        self.net = nn.Sequential(
            nn.Linear(size + 1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, size)
        )

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    def forward(self, noisy: Tensor, noise_level: Tensor) -> Tensor:
        flat = torch.cat([noisy.flatten(1), noise_level.reshape(-1, 1).to(noisy.dtype)], dim=1)
        return self.net(flat).reshape(noisy.shape)
