"""A folder of image files (searched recursively) as a dataset of square float tensors."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from thermogen.errors import DatasetError

__all__ = ["ImageFolder"]

DEFAULT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

# Pillow errors that mean "this file is not a readable image".
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)
# Integer modes holding more than 8 bits; Pillow's convert("L") clips these at 255.
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


class ImageFolder(Dataset):
    """Every image under ``root`` (recursively), as float32 tensors (C, H, W) in [0, 1].

    Files are those whose suffix, lower-cased, is in ``extensions``, ordered by
    their path relative to ``root`` (sorted, so the order is the same on every
    machine and run); ``paths`` lists them.

    Each image is converted to ``"RGB"`` (``channels=3``) or ``"L"``
    (``channels=1``); alpha is dropped without compositing, 16-bit grayscale is
    scaled by 1/65535. With ``center_crop`` it is cropped to the largest centred
    square first; without, non-square images are stretched. It is then resized to
    ``image_size`` x ``image_size`` with `PIL.Image.resize` using bilinear
    resampling and ``reducing_gap=None``: Pillow widens the bilinear kernel by the
    scale factor when shrinking, so downscaling is antialiased (no aliasing from
    point sampling), and exact-size images are left untouched.

    Raises `DatasetError` if ``root`` is not a folder or holds no matching file,
    and, when an item is read, if its file cannot be decoded (naming the file);
    `verify` decodes every file up front. Raises `ValueError` for a bad
    ``image_size``, ``channels`` or ``extensions``.

    Example::

        flowers = ImageFolder("data/flowers", image_size=64, center_crop=True)
        flowers[0].shape                                     # (3, 64, 64), values in [0, 1]
        flowers.verify()                                     # DatasetError naming every unreadable file
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        image_size: int,
        channels: int = 3,
        center_crop: bool = False,
        extensions: Iterable[str] = DEFAULT_EXTENSIONS,
    ) -> None:
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
            raise ValueError(f"image_size must be a positive int, got {image_size!r}")
        if channels not in (1, 3) or isinstance(channels, bool):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
        if isinstance(extensions, str):
            extensions = (extensions,)  # a single suffix
        exts = tuple(sorted({e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}))
        if not exts:
            raise ValueError("extensions must name at least one file suffix, got none")
        self.root = Path(root).expanduser()
        self.image_size = image_size
        self.channels = channels
        self.center_crop = center_crop
        self.extensions = exts
        if not self.root.is_dir():
            raise DatasetError(f"image folder {self.root} does not exist or is not a directory")
        self.paths: list[Path] = sorted(
            (p for p in self.root.rglob("*") if p.suffix.lower() in exts and p.is_file()),
            key=lambda p: p.relative_to(self.root).as_posix(),
        )
        if not self.paths:
            raise DatasetError(
                f"image folder {self.root} holds no files with extensions {', '.join(exts)} (searched recursively)"
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` as float32 (C, image_size, image_size) in [0, 1]."""
        return self.load(self.paths[index])

    def load(self, path: Path) -> torch.Tensor:
        """Decode, crop and resize one file; float32 (C, image_size, image_size) in [0, 1]."""
        try:
            with Image.open(path) as im:
                im.load()
                array = self._to_array(im)
        except _DECODE_ERRORS as exc:
            raise DatasetError(f"cannot read image file {path}: {type(exc).__name__}: {exc}") from exc
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    def _to_array(self, im: Image.Image) -> np.ndarray:
        """PIL image -> float32 (H, W, C) in [0, 1], cropped and resized."""
        if im.mode in _HIGH_DEPTH_MODES:
            # Resize in float ("F") mode so the extra bits survive.
            scaled = np.clip(np.asarray(im, dtype=np.float32) / 65535.0, 0.0, 1.0)
            im, scale = Image.fromarray(scaled), 1.0
        elif im.mode == "F":
            scale = 1.0  # assumed already in [0, 1]
        else:
            im, scale = im.convert("RGB" if self.channels == 3 else "L"), 255.0
        if self.center_crop and im.width != im.height:
            side = min(im.width, im.height)
            left, top = (im.width - side) // 2, (im.height - side) // 2
            im = im.crop((left, top, left + side, top + side))
        size = (self.image_size, self.image_size)
        if im.size != size:
            im = im.resize(size, Image.Resampling.BILINEAR, reducing_gap=None)
        array = np.asarray(im, dtype=np.float32)
        array = array / np.float32(scale) if scale != 1.0 else np.clip(array, 0.0, 1.0)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.shape[2] != self.channels:
            array = np.repeat(array, self.channels, axis=2)  # single-channel float source, RGB wanted
        return array

    def verify(self) -> None:
        """Decode (and crop/resize) every file; raise `DatasetError` listing each one that fails."""
        bad: list[str] = []
        for path in self.paths:
            try:
                self.load(path)
            except DatasetError as exc:
                bad.append(str(exc))
        if bad:
            raise DatasetError(
                f"{len(bad)} of {len(self.paths)} image files in {self.root} cannot be read:\n  " + "\n  ".join(bad)
            )

    def __repr__(self) -> str:
        return (
            f"ImageFolder(root={str(self.root)!r}, n={len(self)}, image_size={self.image_size}, "
            f"channels={self.channels}, center_crop={self.center_crop})"
        )
