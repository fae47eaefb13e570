"""A dataset over an in-memory image tensor, shared by the trainer tests (tests/training)."""

from __future__ import annotations

import torch


class Images(torch.utils.data.Dataset):
    """``images[i]`` as item ``i``; the ``images`` attribute is what MNIST has too (the recipes read it).

    Example::

        dataset = Images(torch.rand(32, 1, 8, 8))
    """

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.images[index]
