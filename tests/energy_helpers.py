"""Helpers shared by the energy tests (tests/models, tests/samplers/energy, tests/test_replay_buffer.py)."""

from __future__ import annotations

import torch
from torch import nn

from thermogen.interfaces import EnergyModel
from thermogen.models.energy_cnn import EnergyCNN


def tiny_cnn(dtype: torch.dtype = torch.float64, seed: int = 0) -> EnergyCNN:
    torch.manual_seed(seed)
    return EnergyCNN(in_channels=1, image_size=8, widths=(3, 4), hidden=5).to(dtype)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform_images(n: int, size: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


class Quadratic(EnergyModel):
    """E(x) = |x - c|^2 / 2 per sample, through the default (autograd) energy_and_score."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.center = nn.Parameter(torch.linspace(-0.5, 0.5, dims, dtype=torch.float64))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.center.shape[0],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x.reshape(x.shape[0], -1) - self.center).square().sum(1)
