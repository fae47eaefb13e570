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
:mod:`thermogen.mnist.train_classifier`).

The classifier is an evaluation tool, not a generative component: it is not in
the registry and has its own two-file folder, written by :func:`save_classifier`
and read by :func:`load_classifier`::

    config.json         {"feature_dims": 128, "widths": [16, 32, 64]}   (the constructor arguments)
    model.safetensors   the weights (state_dict)

The trained one ships in ``thermogen/mnist/weights`` (:data:`CLASSIFIER_DIR`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thermogen.atomic import write_json
from thermogen.checks import check_positive_int, check_positive_ints
from thermogen.config_files import CONFIG_NAME, read_config
from thermogen.errors import ConfigError
from thermogen.weights import WEIGHTS_NAME, load_module_state, save_tensors

IMAGE_SIZE = 32
MNIST_SIZE = 28
NUM_CLASSES = 10

CLASSIFIER_DIR = Path(__file__).resolve().parent / "weights"
"""The shipped classifier's folder (``config.json`` + ``model.safetensors`` + model card)."""


class MNISTClassifier(nn.Module):
    """Digit classifier for (B, 1, 32, 32) images in [0, 1] (the diffusion convention).

    Inputs follow ``MNIST(preprocess="diffusion")``: 28 x 28 digits padded by
    2 px of 0 (black) on each side, values ``u8 / 255``. Unpadded (B, 1, 28, 28)
    images (``preprocess="raw"``) are accepted and padded the same way.

    Args:
        widths: channels of the conv blocks; each block halves the resolution,
            so at most 5 blocks (32 -> 1).
        feature_dims: size of the penultimate (feature) layer.

    Example::

        classifier = load_classifier()                       # the shipped one, in eval mode
        features = classifier.features(images)               # (B, 128) for images (B, 1, 32, 32) in [0, 1]
        digits = classifier(images).argmax(dim=1)            # (B,) in 0..9
    """

    def __init__(self, widths: Sequence[int] = (16, 32, 64), feature_dims: int = 128) -> None:
        super().__init__()
        widths = check_positive_ints("widths", widths, min_length=1, max_length=5)
        feature_dims = check_positive_int("feature_dims", feature_dims)
        self.config: dict[str, Any] = {"feature_dims": feature_dims, "widths": widths}
        """The constructor arguments, as saved in ``config.json``."""
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


def save_classifier(model: MNISTClassifier, directory: str | os.PathLike[str]) -> None:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` into ``directory``, atomically.

    ``directory`` must be new, empty, or hold only what an earlier save wrote (see :mod:`thermogen.saving`).
    """
    from thermogen.saving import save_directory

    def write(folder: Path) -> None:
        write_json(folder / CONFIG_NAME, model.config)
        save_tensors(model.state_dict(), folder / WEIGHTS_NAME)

    save_directory(directory, write)


def load_classifier(directory: str | os.PathLike[str] | None = None) -> MNISTClassifier:
    """The shipped classifier, or one written by :func:`save_classifier` into ``directory``; in eval mode.

    Raises:
        ConfigError: ``config.json`` is missing, malformed or has keys other than the constructor's.
        CheckpointError: ``model.safetensors`` is missing, corrupted or does not fit the network.
    """
    folder = Path(directory) if directory is not None else CLASSIFIER_DIR
    config = read_config(folder / CONFIG_NAME)
    unknown = sorted(set(config) - {"widths", "feature_dims"})
    if unknown:
        raise ConfigError(f"{folder / CONFIG_NAME} has unknown keys {unknown}; expected 'widths' and 'feature_dims'")
    model = MNISTClassifier(**config)
    load_module_state(model, folder / WEIGHTS_NAME)
    return model.eval()


__all__ = ["CLASSIFIER_DIR", "MNISTClassifier", "init_weights", "load_classifier", "pad_to_32", "save_classifier"]
