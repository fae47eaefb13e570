"""The two value ranges images take, and the one pair of maps between them.

- **Unit range** [0, 1]: image files, ``MNIST(preprocess="diffusion")``,
  :class:`~thermogen.data.ImageFolder`, the diffusion pipelines' inputs and
  outputs, the metrics; 0 is black.
- **Signed range** [-1, 1]: what the energy-based models see (the book's EBM
  convention, ``MNIST(preprocess="ebm")``, replay buffers); -1 is black.

``to_signed_range(images) = 2 * images - 1`` and ``to_unit_range(x) = (x + 1) / 2``,
the latter clipped to [0, 1] (Langevin chains can step outside [-1, 1]).
"""

from __future__ import annotations

from torch import Tensor


def to_signed_range(images: Tensor) -> Tensor:
    """[0, 1] images -> [-1, 1]: ``2 * images - 1`` (any shape; dtype kept; values outside are not clipped)."""
    return images * 2.0 - 1.0


def to_unit_range(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1] images: ``(x + 1) / 2`` clipped to [0, 1], in float32 (images to show, save or score)."""
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)
