"""A DDPM-style noise-predicting U-Net: the noise level conditions every residual block.

The book's U-Net (:mod:`thermogen.models.unet`) sees the noise level once, as
channels concatenated to the input, and normalises with BatchNorm. This network
follows Ho et al. 2020 ("Denoising Diffusion Probabilistic Models", appendix B)
and Dhariwal & Nichol 2021 (scale-shift conditioning):

    noise level (B,) --sinusoidal(1000 * level)--> MLP --> e (B, 4 * widths[0])

    image (B, C, H, W) --conv3x3--> widths[0]
    down:   level i: [EmbeddedResBlock(e) x depth] (skip after each), then a stride-2 conv (skip), except last
    middle: EmbeddedResBlock(e), [SelfAttention at the lowest resolution], EmbeddedResBlock(e)
    up:     level i (reversed): [concat skip, EmbeddedResBlock(e)] x (depth + 1), then nearest x2 + conv3x3
    GroupNorm -> SiLU -> conv3x3 -> C channels, zero-initialised (starts by predicting zero)

    EmbeddedResBlock(x, e): h = conv3x3(SiLU(GN(x)));  (scale, shift) = Linear(SiLU(e))
                            h = conv3x3(SiLU(GN(h) * (1 + scale) + shift))   (second conv zero-initialised)
                            return skip(x) + h

Any ``image_size`` divisible by ``2 ** (len(widths) - 1)`` works: MNIST's native
28 x 28 with ``widths`` of length 3 goes 28 -> 14 -> 7 (no padding to 32).
GroupNorm makes the output of a sample independent of its batch mates, so
training and sampling see the same network. Most FLOPs sit at the top level
(full resolution), so ``widths[0]`` is the width to keep small on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thermogen.checks import check_allocation, check_bool, check_number
from thermogen.errors import ConfigError
from thermogen.interfaces import NoisePredictor
from thermogen.models.unet import check_unet_layout


def noise_level_embedding(noise_level: Tensor, dims: int) -> Tensor:
    """Transformer-style sinusoidal features of ``1000 * noise_level``: (B,) -> (B, dims), cos then sin.

    Frequencies ``10000 ** (-i / (dims / 2))`` for i = 0 .. dims/2 - 1 (Ho et al. 2020, as for
    integer timesteps); the factor 1000 spreads noise levels in [0, 1] over the
    range that integer timesteps of a 1000-step schedule would cover.
    """
    half = dims // 2
    frequencies = torch.exp(
        -math.log(10000.0) * torch.arange(half, device=noise_level.device, dtype=torch.float32) / half
    )
    angles = 1000.0 * noise_level.float()[:, None] * frequencies[None, :]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (a divisor of ``channels``), affine, eps 1e-5."""
    return nn.GroupNorm(math.gcd(channels, 8), channels)


class EmbeddedResBlock(nn.Module):
    """Residual block whose second normalisation is scaled and shifted by the noise-level embedding.

    Example::

        block = EmbeddedResBlock(32, 64, embedding_dims=128, dropout=0.0)
        block(torch.randn(2, 32, 28, 28), torch.randn(2, 128)).shape   # (2, 64, 28, 28)
    """

    def __init__(self, in_channels: int, out_channels: int, embedding_dims: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.embedding = nn.Linear(embedding_dims, 2 * out_channels)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)  # type: ignore[arg-type]
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.embedding(F.silu(embedding))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H x W positions, pre-GroupNorm, residual, zero-initialised output.

    Example::

        attention = SelfAttention(128)
        attention(x).shape                                   # x's (B, 128, 7, 7); at initialisation it returns x
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(batch, 3, channels, height * width).transpose(-1, -2).unbind(1)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.out(h.transpose(-1, -2).reshape(batch, channels, height, width))


class DDPMUNet(NoisePredictor):
    """Noise predictor for images (B, in_channels, image_size, image_size), conditioned in every block.

    Args:
        in_channels: image channels (1 for MNIST).
        image_size: height = width; a multiple of ``2 ** (len(widths) - 1)`` (28 works with 3 widths).
        widths: channels per resolution level, top (full resolution) first; at least two.
        block_depth: residual blocks per level on the way down (``block_depth + 1`` on the way up).
        attention: self-attention in the middle, at the lowest resolution.
        dropout: dropout rate inside the residual blocks.

    Example::

        net = DDPMUNet(in_channels=1, image_size=28)         # 28 -> 14 -> 7, attention at 7 x 7
        net(torch.randn(2, 1, 28, 28), torch.tensor([0.1, 0.9])).shape   # (2, 1, 28, 28): the noise predicted
    """

    conformance: ClassVar[dict[str, Any]] = {"config": {"image_size": 8, "widths": [8, 16], "block_depth": 1}}
    """What the conformance kit checks (a small instance; thermogen.testing.conformance)."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        widths: Sequence[int] = (32, 64, 128),
        block_depth: int = 2,
        attention: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = check_unet_layout(in_channels, image_size, widths, block_depth)
        check_bool("attention", attention)
        check_number("dropout", dropout, 0, 1, high_inclusive=False)
        widest = max(widths)
        check_allocation("the widest convolution weight", (widest, 2 * widest, 3, 3), error=ConfigError)
        check_allocation("the noise-level embedding weight", (4 * widths[0], 4 * widths[0]), error=ConfigError)
        self.in_channels = in_channels
        self.image_size = image_size
        self.frequency_dims = widths[0]
        embedding_dims = 4 * widths[0]
        self.embed = nn.Sequential(
            nn.Linear(self.frequency_dims, embedding_dims), nn.SiLU(), nn.Linear(embedding_dims, embedding_dims)
        )

        def block(cin: int, cout: int) -> EmbeddedResBlock:
            return EmbeddedResBlock(cin, cout, embedding_dims, dropout)

        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, channels = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(block_depth):
                blocks.append(block(channels, width))
                channels = width
                skips.append(channels)
            self.down.append(blocks)
            if level < len(widths) - 1:
                self.downsample.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))
                skips.append(channels)
        self.middle_in = block(channels, channels)
        self.middle_attention: nn.Module = SelfAttention(channels) if attention else nn.Identity()
        self.middle_out = block(channels, channels)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(block_depth + 1):
                blocks.append(block(channels + skips.pop(), width))
                channels = width
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.head_norm = group_norm(channels)
        self.head = nn.Conv2d(channels, in_channels, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)  # type: ignore[arg-type]

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """``(in_channels, image_size, image_size)``."""
        return (self.in_channels, self.image_size, self.image_size)

    def forward(self, noisy: Tensor, noise_level: Tensor) -> Tensor:
        """Predict the noise in ``noisy`` (B, C, H, W) at ``noise_level`` (B,) = noise rate in [0, 1]."""
        if noisy.ndim != 4 or noisy.shape[1] != self.in_channels:
            raise ValueError(f"noisy has shape {tuple(noisy.shape)}; expected (B, {self.in_channels}, H, W)")
        embedding = self.embed(noise_level_embedding(noise_level.reshape(noisy.shape[0]), self.frequency_dims))
        embedding = embedding.to(noisy.dtype)
        x = self.stem(noisy)
        skips = [x]
        for level, blocks in enumerate(self.down):
            for block in blocks:  # type: ignore[attr-defined]
                x = block(x, embedding)
                skips.append(x)
            if level < len(self.downsample):
                x = self.downsample[level](x)
                skips.append(x)
        x = self.middle_out(self.middle_attention(self.middle_in(x, embedding)), embedding)
        for level, blocks in enumerate(self.up):
            for block in blocks:  # type: ignore[attr-defined]
                x = block(torch.cat([x, skips.pop()], dim=1), embedding)
            if level < len(self.upsample):
                x = self.upsample[level](F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.head(F.silu(self.head_norm(x)))
