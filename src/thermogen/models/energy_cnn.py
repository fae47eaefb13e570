"""The book's energy network for 32x32 MNIST (Generative Deep Learning, 2nd ed., ch. 7).

Shape (book defaults, 76,993 parameters at 1x32x32)::

    image (B, 1, 32, 32)
    conv 16, k5, s2, pad 2 -> swish   (B, 16, 16, 16)
    conv 32, k3, s2, pad 1 -> swish   (B, 32,  8,  8)
    conv 64, k3, s2, pad 1 -> swish   (B, 64,  4,  4)
    conv 64, k3, s2, pad 1 -> swish   (B, 64,  2,  2)
    flatten -> dense 64 -> swish -> dense 1

Sign convention: the book's network outputs a *score-like* number
``f(x) = -E(x)`` (higher = more likely; its Langevin sampler ascends
``grad f`` and its loss is ``mean f(fake) - mean f(real)``).
:meth:`EnergyCNN.negative_energy` is that output and :meth:`EnergyCNN.forward`
returns the energy ``E(x) = -f(x)``, thermogen's convention.

Padding 2 / 1 with stride 2 gives the sizes of Keras' ``padding="same"``
(32 -> 16 -> 8 -> 4 -> 2); Keras pads same-stride-2 convs asymmetrically, so
Keras weights would need a one-pixel shift, but nothing here loads them.
Weights start like Keras' defaults (Glorot uniform, zero biases), as in the book.

:meth:`EnergyCNN.energy_and_score` computes ``grad_x f`` by hand instead of
through autograd, several times faster on CPU (see ``benchmarks/ebm.py``):
the backward pass is written out layer by layer (SiLU' in closed form, the
input gradient of each conv as ``convolution_backward`` with only the input
mask), in channels-last layout, and the first conv's input gradient -- a
transposed conv with a single output channel, the slowest op of the step --
is rewritten as an ordinary stride-1 conv followed by a pixel shuffle
(:func:`stride2_input_grad`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from thermogen.checks import check_allocation, check_positive_int, check_positive_ints
from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel

FIRST_KERNEL, FIRST_PADDING = 5, 2
KERNEL, PADDING = 3, 1
STRIDE = 2


def _halved(size: int) -> int:
    """Output size of a stride-2 conv with padding (kernel - 1) / 2: ceil(size / 2)."""
    return (size + 1) // 2


class EnergyCNN(EnergyModel):
    """The book's EBM network; ``forward(x) -> E(x)`` of shape (B,).

    Args:
        in_channels: image channels (1 for MNIST).
        image_size: height = width of the images (32 for padded MNIST); any size >= 1 works,
            each conv halves it rounding up.
        widths: output channels of the stride-2 convs; the first conv has a 5x5 kernel, the others 3x3.
        hidden: width of the hidden dense layer.

    Inputs are images (B, in_channels, image_size, image_size), in [-1, 1] for the book.

    Example::

        model = EnergyCNN()                                  # the book's 76,993 parameters
        x = torch.rand(8, *model.sample_shape) * 2 - 1       # (8, 1, 32, 32) in [-1, 1]
        energy, score = model.energy_and_score(x)            # (8,), (8, 1, 32, 32); score = -grad E
    """

    _phase_index: Tensor

    conformance: ClassVar[dict[str, Any]] = {"config": {"image_size": 16, "widths": [4, 8], "hidden": 8}}
    """What the conformance kit checks (a small instance; thermogen.testing.conformance)."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 32,
        widths: Sequence[int] = (16, 32, 64, 64),
        hidden: int = 64,
    ) -> None:
        super().__init__()
        in_channels = check_positive_int("in_channels", in_channels)
        image_size = check_positive_int("image_size", image_size)
        widths = check_positive_ints("widths", widths)
        hidden = check_positive_int("hidden", hidden)
        check_energy_cnn_sizes(in_channels, image_size, widths, hidden)
        self.in_channels = in_channels
        self.image_size = image_size

        self.convs = nn.ModuleList()
        channels, size = in_channels, image_size
        for i, width in enumerate(widths):
            kernel, padding = (FIRST_KERNEL, FIRST_PADDING) if i == 0 else (KERNEL, PADDING)
            self.convs.append(nn.Conv2d(channels, width, kernel, stride=STRIDE, padding=padding))
            channels, size = width, _halved(size)
        self.dense = nn.Linear(channels * size * size, hidden)
        self.out = nn.Linear(hidden, 1)
        self.register_buffer("_phase_index", _phase_index(FIRST_KERNEL, FIRST_PADDING), persistent=False)
        self.reset_parameters()

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(in_channels, image_size, image_size)."""
        return (self.in_channels, self.image_size, self.image_size)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Keras' default initialisation: Glorot-uniform weights, zero biases."""
        for layer in [*self.convs, self.dense, self.out]:
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is (B, in_channels, image_size, image_size) (shape only, no sync)."""
        if x.ndim != 4:
            raise ValueError(
                f"image batch has shape {tuple(x.shape)}; expected (B, {self.in_channels}, "
                f"{self.image_size}, {self.image_size})"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(f"image has {x.shape[1]} channels, model expects {self.in_channels}")
        if tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise ValueError(f"image is {x.shape[2]}x{x.shape[3]}, model expects {self.image_size}x{self.image_size}")

    def negative_energy(self, x: Tensor) -> Tensor:
        """The book's network output ``f(x) = -E(x)``: (B, C, H, W) -> (B,), higher = more likely."""
        self.check_input(x)
        h = x
        for conv in self.convs:
            h = F.silu(conv(h))
        return self.out(F.silu(self.dense(h.flatten(1)))).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        """Energy ``E(x) = -f(x)``: (B, C, H, W) -> (B,), lower = more likely."""
        return -self.negative_energy(x)

    @torch.no_grad()
    def energy_and_score(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(E(x), -grad_x E(x))`` with the backward pass written out; no graph is built.

        Agrees with autograd to float rounding; shapes (B,) and x.shape. A
        subclass that changes :meth:`negative_energy` must override this too.
        """
        self.check_input(x)
        h = _channels_last(x)
        inputs, pre_activations = [], []
        for conv in self.convs:
            inputs.append(h)
            a = conv(h)
            pre_activations.append(a)
            h = F.silu(a)
        a_dense = self.dense(h.flatten(1))
        h_dense = F.silu(a_dense)
        f = self.out(h_dense).squeeze(1)

        # Backward of f = out(silu(dense(flatten(h)))): grad w.r.t. h, then through each conv.
        grad = _silu_backward(self.out.weight.expand_as(h_dense), a_dense) @ self.dense.weight
        grad = grad.view(h.shape).contiguous(memory_format=torch.channels_last)
        for i in range(len(self.convs) - 1, -1, -1):
            grad = _silu_backward(grad, pre_activations[i])
            weight = cast(Tensor, self.convs[i].weight)
            if i == 0:
                grad = stride2_input_grad(grad, weight, self._phase_index, x.shape[-2:])
            else:
                grad = torch.ops.aten.convolution_backward(
                    grad,
                    inputs[i],
                    weight,
                    None,
                    (STRIDE, STRIDE),
                    (PADDING, PADDING),
                    (1, 1),
                    False,
                    (0, 0),
                    1,
                    (True, False, False),
                )[0]
        return -f, grad


def check_energy_cnn_sizes(in_channels: int, image_size: int, widths: Sequence[int], hidden: int) -> None:
    """Refuse, before any weight is allocated, sizes whose largest weight would exceed the tensor limit.

    The convolution weights grow with the channel counts, the dense layer's
    (hidden, widths[-1] * s * s) with the image size (s = image_size halved len(widths) times).
    """
    channels = [in_channels, *widths]
    for i, (cin, cout) in enumerate(zip(channels, widths)):
        kernel = FIRST_KERNEL if i == 0 else KERNEL
        check_allocation(f"EnergyCNN conv {i} weight", (cout, cin, kernel, kernel), error=ConfigError)
    size = image_size
    for _ in widths:
        size = _halved(size)
    check_allocation(
        f"EnergyCNN dense weight (hidden={hidden}, widths[-1] * {size}^2 features for image_size={image_size})",
        (hidden, widths[-1] * size * size),
        error=ConfigError,
    )


def _channels_last(x: Tensor) -> Tensor:
    """``x`` in channels-last layout, with explicit channels-last strides even for one channel.

    For C = 1 ``contiguous(memory_format=channels_last)`` keeps the NCHW strides
    (the layouts coincide), and convolutions would then pick NCHW kernels; the
    same memory viewed with channels-last strides makes every layer run channels-last.
    """
    x = x.contiguous(memory_format=torch.channels_last)
    _, channels, height, width = x.shape
    return x.as_strided(x.shape, (channels * height * width, 1, width * channels, channels))


def _silu_backward(grad: Tensor, pre_activation: Tensor) -> Tensor:
    """``grad * silu'(a)`` with ``silu'(a) = s(a) (1 + a (1 - s(a)))``, s the sigmoid (one fused kernel)."""
    return torch.ops.aten.silu_backward(grad, pre_activation)


def _phase_index(kernel: int, padding: int) -> Tensor:
    """Index table for :func:`stride2_input_grad`: (2, T) kernel rows, ``kernel`` marking a zero tap.

    Row r lists, for taps t = 0..T-1, the kernel index ``2 (P - t) + r + padding``
    (or ``kernel`` where that is outside [0, kernel)); P = (T - 1) / 2.
    """
    offsets = [d for r in (0, 1) for d in range(-kernel, kernel + 1) if 0 <= 2 * d + r + padding < kernel]
    half = max(max(offsets), -min(offsets))
    rows = []
    for r in (0, 1):
        row = []
        for t in range(2 * half + 1):
            k = 2 * (half - t) + r + padding
            row.append(k if 0 <= k < kernel else kernel)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long)


def stride2_input_grad(grad_out: Tensor, weight: Tensor, phase_index: Tensor, size: Sequence[int]) -> Tensor:
    """Input gradient of a stride-2 conv, as a stride-1 conv plus a pixel shuffle.

    For ``a = conv2d(x, W, stride=2, padding=p)`` the input gradient at pixel
    ``(2m + r, 2n + s)`` (phases r, s in {0, 1}) is

        dx[c, 2m+r, 2n+s] = sum_{o, d, e} W[o, c, 2d+r+p, 2e+s+p] * da[o, m-d, n-e],

    a stride-1 correlation of ``da`` with a phase kernel per (c, r, s). Stacking
    the four phases as 4 * C output channels and pixel-shuffling gives dx. This
    is the same sum as ``conv_transpose2d`` but runs as a forward conv, which
    oneDNN does several times faster when C is small (C = 1 here).

    Args:
        grad_out: dL/da, (B, O, Ho, Wo).
        weight: the conv's weight (O, C, K, K).
        phase_index: :func:`_phase_index` for (K, p), (2, T).
        size: the input's (H, W), at most (2 Ho, 2 Wo).

    Returns:
        dL/dx, (B, C, H, W).
    """
    out_channels, in_channels = weight.shape[:2]
    taps = phase_index.shape[1]
    padded = F.pad(weight, (0, 1, 0, 1))  # index K (one past the kernel) reads a zero
    rows = phase_index[:, :, None, None]  # (r, t, 1, 1)
    cols = phase_index[None, None, :, :]  # (1, 1, s, u)
    phase_kernel = padded[:, :, rows, cols]  # (O, C, r, t, s, u)
    phase_kernel = phase_kernel.permute(1, 2, 4, 0, 3, 5).reshape(in_channels * 4, out_channels, taps, taps)
    phases = F.conv2d(grad_out, phase_kernel, padding=(taps - 1) // 2)  # (B, 4C, Ho, Wo)
    batch, _, height, width = phases.shape
    # pixel shuffle through the channels-last view: (B, Ho, Wo, C, r, s) -> (B, C, Ho, r, Wo, s)
    grad_in = phases.permute(0, 2, 3, 1).reshape(batch, height, width, in_channels, 2, 2)
    grad_in = grad_in.permute(0, 3, 1, 4, 2, 5).reshape(batch, in_channels, 2 * height, 2 * width)
    return grad_in[:, :, : size[0], : size[1]]
