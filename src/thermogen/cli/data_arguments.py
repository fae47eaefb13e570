"""The training-data options of ``train`` and ``recalibrate-bn``, and the training set they name.

``--dataset mnist`` reads :func:`thermogen.data.mnist_training_set`; ``--dataset folder``
reads :func:`thermogen.data.folder_training_set` from ``--data-dir``.
"""

from __future__ import annotations

import argparse
from typing import Any, Literal


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir, --image-size, --channels, --center-crop (read by :func:`training_set`)."""
    parser.add_argument("--dataset", choices=("mnist", "folder"), default="mnist", help="MNIST or a folder of images")
    parser.add_argument("--data-dir", help="MNIST folder (default: $THERMOGEN_MNIST_DIR or download) or image folder")
    parser.add_argument("--image-size", type=int, default=32, help="MNIST: 32 (padded, the book) or 28 (native)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=None, help="image folder: 1 or 3 (default: 3)")
    parser.add_argument("--center-crop", action="store_true", help="image folder: crop to a square first")


def training_set(args: argparse.Namespace, preprocess: Literal["diffusion", "ebm"]) -> Any:
    """The images the data options name, in [0, 1] for ``"diffusion"`` or [-1, 1] for ``"ebm"``."""
    from thermogen.data import folder_training_set, mnist_training_set

    if args.dataset == "mnist":
        if args.channels not in (None, 1):
            raise ValueError(f"MNIST has 1 channel; got --channels {args.channels}")
        return mnist_training_set(args.data_dir, preprocess, args.image_size)
    if not args.data_dir:
        raise ValueError("--dataset folder needs --data-dir PATH")
    return folder_training_set(args.data_dir, args.image_size, preprocess, args.channels or 3, args.center_crop)
