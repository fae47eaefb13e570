"""The book's noise-predicting U-Net (Generative Deep Learning, ch. 8; Keras DDIM example).

Shape of the network (book defaults: widths (32, 64, 96, 128), block depth 2)::

    image (B, C, H, W) --conv1x1--> 32 ch  ┐
    noise variance (B,) --sinusoidal 32-d, tiled over H x W--> 32 ch ┘ concat -> 64 ch
    down:   [ResBlock x depth, avg-pool 2]   for widths[:-1]  (skips saved after each block)
    middle:  ResBlock(widths[-1]) x depth
    up:     [bilinear x2, (concat skip, ResBlock) x depth]  for reversed(widths[:-1])
    conv1x1 -> C channels, zero-initialised (the network starts by predicting zero noise)

ResBlock: ``x + conv3x3(swish(conv3x3(BN(x))))``, with BatchNorm without affine
parameters (Keras ``center=False, scale=False``, momentum 0.99 ≙ PyTorch 0.01,
eps 1e-3) and a 1x1 conv on the residual when the width changes. There is no
attention. The book's default has 1,950,627 parameters at 3 channels.

The network is conditioned on the noise *variance* ``noise_level ** 2``, as in
the book; it predicts the noise ``epsilon``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thermogen.checks import (
    check_allocation,
    check_choice,
    check_int,
    check_number,
    check_positive_int,
    check_positive_ints,
)
from thermogen.errors import ConfigError
from thermogen.interfaces import NoisePredictor


def sinusoidal_embedding(variance: Tensor, dims: int = 32, max_frequency: float = 1000.0) -> Tensor:
    """The book's embedding of the noise variance: (B,) -> (B, dims), sin first then cos.

    Frequencies are log-spaced from 1 to ``max_frequency``; angular frequency 2πf.
    """
    half = dims // 2
    frequencies = torch.exp(
        torch.linspace(0.0, math.log(max_frequency), half, device=variance.device, dtype=torch.float32)
    )
    angles = 2.0 * math.pi * frequencies * variance.float()[:, None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1).to(variance.dtype)


NORMS = ("batch", "group")


def check_unet_layout(in_channels: int, image_size: int, widths: Sequence[int], block_depth: int) -> list[int]:
    """Validate the arguments every U-Net here shares (ConfigError); returns ``widths`` as a list of ints.

    ``image_size`` must be a positive multiple of ``2 ** (len(widths) - 1)`` (one halving per level).
    Channel counts are integers (NumPy integers included), never rounded.
    """
    check_positive_int("in_channels", in_channels)
    widths = check_positive_ints("widths", widths, min_length=2)
    check_positive_int("block_depth", block_depth)
    factor = 2 ** (len(widths) - 1)
    if check_int("image_size", image_size) < factor or image_size % factor:
        raise ConfigError(f"image_size={image_size} must be a positive multiple of {factor} for {len(widths)} widths")
    return widths


def make_norm(kind: str, channels: int) -> nn.Module:
    """The block's normalisation without affine parameters: the book's BatchNorm, or GroupNorm.

    GroupNorm does not depend on the batch, so results do not change with the
    per-process batch size (useful for distributed training on CPUs, where
    SyncBatchNorm is not available).
    """
    if check_choice("norm", kind, NORMS) == "batch":
        return nn.BatchNorm2d(channels, affine=False, momentum=0.01, eps=1e-3)
    return nn.GroupNorm(math.gcd(channels, 8), channels, affine=False, eps=1e-3)


class ResidualBlock(nn.Module):
    """Pre-norm residual block: norm (no affine) -> conv3x3 -> swish -> conv3x3, plus a (1x1-projected) skip.

    Example::

        block = ResidualBlock(64, 96, norm="group")          # 64 != 96: the skip is a 1x1 conv
        block(torch.randn(2, 64, 16, 16)).shape              # (2, 96, 16, 16)
    """

    def __init__(self, in_channels: int, width: int, norm: str = "batch") -> None:
        super().__init__()
        self.skip = nn.Conv2d(in_channels, width, 1) if in_channels != width else nn.Identity()
        self.norm = make_norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.silu(self.conv1(self.norm(x))))
        return h + self.skip(x)


class UNet(NoisePredictor):
    """Noise predictor for images (B, in_channels, image_size, image_size).

    Args:
        in_channels: image channels (1 for MNIST, 3 for flowers).
        image_size: height = width; must be divisible by 2 ** (len(widths) - 1).
        widths: channels per resolution level; the last one is the middle block.
        block_depth: residual blocks per level.
        embedding_dims: size of the sinusoidal noise-variance embedding (even).
        embedding_max_frequency: highest embedding frequency.
        norm: "batch" (the book's BatchNorm) or "group" (GroupNorm, batch-independent).

    Example::

        model = UNet(in_channels=1, image_size=32)           # the book's widths (32, 64, 96, 128)
        eps = model(x_t, noise_level)                        # (B, 1, 32, 32); noise_level (B,) = noise rate
        denoised = model.denoise(x_t, signal_rate=0.6, noise_rate=0.8)   # x0^ and eps^
    """

    conformance: ClassVar[dict[str, Any]] = {
        "config": {"in_channels": 1, "image_size": 8, "widths": [8, 16], "block_depth": 1, "embedding_dims": 8}
    }
    """What the conformance kit checks (a small instance; thermogen.testing.conformance)."""

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 64,
        widths: Sequence[int] = (32, 64, 96, 128),
        block_depth: int = 2,
        embedding_dims: int = 32,
        embedding_max_frequency: float = 1000.0,
        norm: Literal["batch", "group"] = "batch",
    ) -> None:
        super().__init__()
        check_choice("norm", norm, NORMS)
        widths = check_unet_layout(in_channels, image_size, widths, block_depth)
        if check_positive_int("embedding_dims", embedding_dims) % 2:
            raise ConfigError(f"embedding_dims={embedding_dims}; expected a positive even number")
        check_number("embedding_max_frequency", embedding_max_frequency, low=0, low_inclusive=False)
        widest = max(widths)
        widest_weight = (widest, 2 * widest + embedding_dims, 3, 3)
        check_allocation("the widest convolution weight", widest_weight, error=ConfigError)
        self.in_channels = in_channels
        self.image_size = image_size
        self.embedding_dims = embedding_dims
        self.embedding_max_frequency = embedding_max_frequency

        self.stem = nn.Conv2d(in_channels, widths[0], 1)
        channels = widths[0] + embedding_dims
        self.down = nn.ModuleList()
        skip_channels = []
        for width in widths[:-1]:
            blocks = nn.ModuleList()
            for _ in range(block_depth):
                blocks.append(ResidualBlock(channels, width, norm))
                channels = width
                skip_channels.append(width)
            self.down.append(blocks)
        self.middle = nn.ModuleList()
        for _ in range(block_depth):
            self.middle.append(ResidualBlock(channels, widths[-1], norm))
            channels = widths[-1]
        self.up = nn.ModuleList()
        for width in reversed(widths[:-1]):
            blocks = nn.ModuleList()
            for _ in range(block_depth):
                blocks.append(ResidualBlock(channels + skip_channels.pop(), width, norm))
                channels = width
            self.up.append(blocks)
        self.head = nn.Conv2d(channels, in_channels, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """``(in_channels, image_size, image_size)``."""
        return (self.in_channels, self.image_size, self.image_size)

    def forward(self, noisy: Tensor, noise_level: Tensor) -> Tensor:
        """Predict the noise in ``noisy`` (B, C, H, W) at ``noise_level`` (B,) = noise rate."""
        if noisy.ndim != 4 or noisy.shape[1] != self.in_channels:
            raise ValueError(f"noisy has shape {tuple(noisy.shape)}; expected (B, {self.in_channels}, H, W)")
        batch, _, height, width = noisy.shape
        embedding = sinusoidal_embedding(
            noise_level.reshape(batch) ** 2, self.embedding_dims, self.embedding_max_frequency
        )
        embedding = embedding.to(noisy.dtype)[:, :, None, None].expand(-1, -1, height, width)
        x = torch.cat([self.stem(noisy), embedding], dim=1)
        skips = []
        for blocks in self.down:
            for block in blocks:  # type: ignore[attr-defined]
                x = block(x)
                skips.append(x)
            x = F.avg_pool2d(x, 2)
        for block in self.middle:
            x = block(x)
        for blocks in self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            for block in blocks:  # type: ignore[attr-defined]
                x = block(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)
