"""A small MNIST classifier whose penultimate features replace Inception's in FD / KID.

The Inception network behind FID and KID is trained on ImageNet photographs, is
not available offline and says little about 32 x 32 digits. Following TF-GAN's
MNIST scores (``mnist_frechet_distance`` on a ~99 % MNIST classifier), thermogen
trains its own digit classifier and measures sample quality in the space of its
penultimate layer. Numbers computed with this network are not on the Inception
scale: compare only numbers computed with the same classifier.

Shape of the network (defaults ``widths=(16, 32, 64)``, ``feature_dims=128``)::

    image (B, 1, 32, 32) in [0, 1]
    [conv3x3 -> BatchNorm -> ReLU -> max-pool 2]  for each width     (32 -> 16 -> 8 -> 4)
    flatten (64 * 4 * 4) -> linear -> ReLU        = features (B, 128), all >= 0
    linear -> logits (B, 10)

BatchNorm rather than dropout: training draws no random numbers inside the
network, so a run is a pure function of its seed (see
:mod:`thermogen.training.classifier`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thermogen.config import Configurable
from thermogen.errors import ConfigError

IMAGE_SIZE = 32
MNIST_SIZE = 28
NUM_CLASSES = 10


class MNISTClassifier(nn.Module, Configurable):
    """Digit classifier for (B, 1, 32, 32) images in [0, 1] (the diffusion convention).

    Inputs follow ``MNIST(preprocess="diffusion")``: 28 x 28 digits padded by
    2 px of 0 (black) on each side, values ``u8 / 255``. Unpadded (B, 1, 28, 28)
    images (``preprocess="raw"``) are accepted and padded the same way.

    Args:
        widths: channels of the conv blocks; each block halves the resolution,
            so at most 5 blocks (32 -> 1).
        feature_dims: size of the penultimate (feature) layer.
    """

    registry_kind: ClassVar[str] = "models"

    conformance: ClassVar[dict[str, Any]] = {"config": {"widths": [4, 8], "feature_dims": 8}}
    """What the conformance kit checks (a small instance; thermogen.testing.conformance)."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64), feature_dims: int = 128) -> None:
        super().__init__()
        widths = tuple(widths)
        if not 1 <= len(widths) <= 5 or any(not isinstance(w, int) or w < 1 for w in widths):
            raise ConfigError(f"widths={list(widths)}; expected 1 to 5 positive integers")
        if not isinstance(feature_dims, int) or feature_dims < 1:
            raise ConfigError(f"feature_dims={feature_dims!r}; expected a positive integer")
        blocks: list[nn.Module] = []
        channels = 1
        for width in widths:
            conv = nn.Conv2d(channels, width, 3, padding=1, bias=False)  # BatchNorm supplies the bias
            blocks += [conv, nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.blocks = nn.Sequential(*blocks)
        side = IMAGE_SIZE >> len(widths)
        self.feature_layer = nn.Linear(channels * side * side, feature_dims)
        self.head = nn.Linear(feature_dims, NUM_CLASSES)
        self.feature_dims = feature_dims

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features: images (B, 1, 32 | 28, 32 | 28) in [0, 1] -> (B, feature_dims), >= 0."""
        h = self.blocks(pad_to_32(x))
        return F.relu(self.feature_layer(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, 10) of images (B, 1, 32, 32) or (B, 1, 28, 28) in [0, 1]."""
        return self.head(self.features(x))

    def predict_proba(self, x: Tensor) -> Tensor:
        """Class probabilities softmax(logits): (B, 10), rows sum to 1."""
        return self(x).softmax(dim=1)


def pad_to_32(x: Tensor) -> Tensor:
    """(B, 1, 32, 32) unchanged; (B, 1, 28, 28) padded by 2 px of 0 on each side; else ValueError."""
    if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[2:]) not in ((IMAGE_SIZE,) * 2, (MNIST_SIZE,) * 2):
        raise ValueError(f"images have shape {tuple(x.shape)}; expected (B, 1, 32, 32) or (B, 1, 28, 28)")
    if x.shape[-1] == MNIST_SIZE:
        pad = (IMAGE_SIZE - MNIST_SIZE) // 2
        x = F.pad(x, (pad, pad, pad, pad), value=0.0)
    return x


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise conv and linear layers from ``generator`` (He-uniform weights, zero biases).

    PyTorch's own initialisation draws from the global RNG; this makes a
    training run a pure function of its seed without touching it.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu", generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


__all__ = ["MNISTClassifier", "init_weights", "pad_to_32"]
