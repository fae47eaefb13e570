"""Turning image tensors into what users asked for, and grids into PNG files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

OutputType = Literal["pil", "numpy", "np", "tensor", "pt"]
"""What a pipeline returns: PIL images, a NumPy array ("np" = "numpy", as in diffusers) or a tensor ("pt")."""


def check_output_type(output_type: str, sample_shape: tuple[int, ...], model_name: str = "the model") -> None:
    """PIL images and arrays need image samples (C, H, W); tensors (``"pt"``) take any shape."""
    if output_type not in ("tensor", "pt") and len(sample_shape) != 3:
        raise ValueError(
            f"output_type={output_type!r} makes images (C, H, W), but the samples of {model_name} have shape "
            f"{sample_shape}; use output_type='pt'"
        )


def to_output(images: Tensor, output_type: OutputType) -> Any:
    """(B, C, H, W) float images in [0, 1] -> "tensor"/"pt" (as is), "numpy"/"np" (B, H, W, C) or "pil" (list)."""
    if output_type in ("tensor", "pt"):
        return images
    if output_type not in ("numpy", "np", "pil"):
        raise ValueError(f"output_type={output_type!r}; expected 'pil', 'numpy' (or 'np') or 'tensor' (or 'pt')")
    array = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
    if output_type in ("numpy", "np"):
        return array
    if output_type == "pil":
        from PIL import Image

        pixels = (array * 255.0).round().clip(0, 255).astype(np.uint8)
        return [Image.fromarray(p[..., 0] if p.shape[-1] == 1 else p) for p in pixels]
    raise ValueError(f"output_type={output_type!r}; expected 'pil', 'numpy' or 'tensor'")


def make_grid(images: Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> Tensor:
    """Tile (B, C, H, W) images in [0, 1] into one (C, H', W') image, ``nrow`` per row."""
    if images.ndim != 4:
        raise ValueError(f"images have shape {tuple(images.shape)}; expected (B, C, H, W)")
    count, channels, height, width = images.shape
    nrow = max(1, min(nrow, count))
    rows = (count + nrow - 1) // nrow
    grid = torch.full(
        (channels, rows * (height + padding) + padding, nrow * (width + padding) + padding),
        pad_value,
        dtype=images.dtype,
    )
    for i, image in enumerate(images.detach().cpu()):
        r, c = divmod(i, nrow)
        top, left = padding + r * (height + padding), padding + c * (width + padding)
        grid[:, top : top + height, left : left + width] = image
    return grid


def save_image(image: Tensor, path: str | os.PathLike[str], scale: int = 1) -> Path:
    """Write a (C, H, W) image in [0, 1] as PNG or JPEG, as the extension says (atomically).

    Optionally upscaled by ``scale`` (nearest); other extensions raise ValueError.
    """
    from PIL import Image

    from thermogen.atomic import atomic_file

    array = (image.detach().cpu().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    picture = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    target = Path(path)
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
    if target.suffix.lower() not in formats:
        raise ValueError(f"{target} has extension {target.suffix or '(none)'!r}; expected .png, .jpg or .jpeg")
    with atomic_file(target) as tmp:
        picture.save(tmp, format=formats[target.suffix.lower()])
    return target


def save_grid(images: Tensor, path: str | os.PathLike[str], nrow: int = 8, scale: int = 2) -> Path:
    """Tile (B, C, H, W) images in [0, 1] and write them as one PNG."""
    return save_image(make_grid(images, nrow=nrow), path, scale=scale)
