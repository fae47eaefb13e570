"""The training images a run reads, in the value range of the model it trains.

Diffusion models train on [0, 1] images (their normalizer maps them further);
energy-based models on [-1, 1], the signed range of :mod:`thermogen.pixels`.
Each function returns a dataset whose items are float32 tensors (C, H, W) in
that range.
"""

from __future__ import annotations

import os
from typing import Literal

from torch import Tensor
from torch.utils.data import Dataset

from thermogen.checks import check_choice
from thermogen.data.image_folder import ImageFolder
from thermogen.data.mnist import MNIST
from thermogen.pixels import to_signed_range

Preprocess = Literal["diffusion", "ebm"]
PREPROCESSES = ("diffusion", "ebm")


def mnist_training_set(
    data_dir: str | os.PathLike[str] | None = None, preprocess: Preprocess = "diffusion", image_size: int = 32
) -> MNIST:
    """The 60,000 MNIST training digits with the book's preprocessing.

    Args:
        data_dir: folder of the IDX files (default: ``$THERMOGEN_MNIST_DIR`` or a download; see :class:`MNIST`).
        preprocess: ``"diffusion"`` ([0, 1], black 0) or ``"ebm"`` ([-1, 1], black -1).
        image_size: 32 (padded by 2 px, the book) or, for diffusion only, 28 (the native digits).
    """
    check_choice("preprocess", preprocess, PREPROCESSES)
    native = image_size == 28 and preprocess == "diffusion"
    if not (image_size == 32 or native):
        raise ValueError(f"image_size={image_size!r}; MNIST is 32x32 (padded) or, for diffusion, 28x28 (native)")
    return MNIST(data_dir, split="train", preprocess="raw" if native else preprocess)


def folder_training_set(
    folder: str | os.PathLike[str],
    image_size: int,
    preprocess: Preprocess = "diffusion",
    channels: int = 3,
    center_crop: bool = False,
) -> Dataset[Tensor]:
    """Every image under ``folder`` (an :class:`ImageFolder`), square ``image_size``, in the range of ``preprocess``.

    ``"diffusion"``: [0, 1] as read; ``"ebm"``: mapped to [-1, 1] item by item.
    """
    check_choice("preprocess", preprocess, PREPROCESSES)
    images = ImageFolder(folder, image_size, channels=channels, center_crop=center_crop)
    return images if preprocess == "diffusion" else SignedRangeImages(images)


class SignedRangeImages(Dataset[Tensor]):
    """A dataset of [0, 1] images, served in [-1, 1] (:func:`~thermogen.pixels.to_signed_range` per item).

    Example::

        images = SignedRangeImages(ImageFolder("data/flowers", image_size=32))   # folder_training_set(..., "ebm")
        images[0]                                            # (3, 32, 32) in [-1, 1], for an energy model
    """

    def __init__(self, images: Dataset[Tensor]) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Tensor:
        return to_signed_range(self.images[index])
