"""The replay buffer of short-run EBM training (Du & Mordatch 2019; the book's ``Buffer``).

Persistent chains: each training step starts its Langevin chains from samples
refined in earlier steps, except a fraction ``reinit_prob`` restarted from
fresh noise, and writes the refined samples back.

The book keeps a Python list: it prepends each refined batch and truncates to
``capacity``, dropping the oldest. Here the samples live in one preallocated
tensor ``(capacity, *sample_shape)`` used as a ring: ``push`` overwrites the
oldest slots. Since draws are uniform over the stored samples, with
replacement, the two hold the same multiset and sample identically in law.

Random draws of :meth:`ReplayBuffer.sample` (all from ``generator``, on the
buffer's device), in order:

1. only if the buffer is empty: ``batch_size`` initial samples from the
   initializer, pushed (the book starts with ``batch_size`` uniform images);
2. ``rand(batch_size)`` -> rows with ``u < reinit_prob`` restart from noise
   (so their number is Binomial(batch_size, reinit_prob), as in the book);
3. ``randint(count, (batch_size,))`` -> stored rows, with replacement;
4. if ``reinit_prob > 0``: ``batch_size`` fresh samples from the initializer
   (the rows that do not restart ignore theirs; no host sync is needed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Literal

import torch
from torch import Tensor

from thermogen.checks import (
    check_allocation,
    check_choice,
    check_finite,
    check_floating,
    check_number,
    check_positive_int,
    check_positive_ints,
)
from thermogen.config import Configurable
from thermogen.errors import CheckpointError, ConfigError

Initializer = Callable[[int, "torch.Generator | None"], Tensor]
"""``fn(n, generator) -> (n, *sample_shape)`` fresh chain starts."""

INITS = ("uniform", "gaussian")
STORAGES = ("float32", "float16", "uint8")
_UINT8_SCALE = 127.5  # [-1, 1] <-> 0..255: x = q / 127.5 - 1


class ReplayBuffer(Configurable):
    """A fixed-capacity store of persistent chain states.

    Args:
        capacity: the most samples kept (book: 8192).
        reinit_prob: probability that a drawn chain restarts from fresh noise (book: 0.05).
        sample_shape: shape of one sample, e.g. (1, 32, 32).
        init: fresh samples: "uniform" = U(-1, 1) (the book), "gaussian" = N(0, 1).
            :meth:`set_initializer` replaces it with any function (not saved in the config).
        storage: how samples are kept, in memory and on disk: "float32" (exact), "float16"
            (half the bytes), or "uint8" (a quarter: samples in [-1, 1] rounded to the 256
            levels ``q / 127.5 - 1``, the grid of 8-bit images; values outside are clipped).
            Whatever is stored is saved and loaded bit for bit, so a resume continues
            exactly from what was stored; :meth:`sample` returns float32.

    Stored on the CPU until :meth:`to` moves it.

    Example::

        buffer = ReplayBuffer(capacity=4, sample_shape=(1, 2, 2), storage="uint8")
        buffer.push(torch.zeros(2, 1, 2, 2))
        len(buffer), buffer.storage.dtype                    # 2, torch.uint8
        starts, indices = buffer.sample(3)                   # (3, 1, 2, 2) float32; index -1 = fresh noise
    """

    registry_kind: ClassVar[str] = "components"

    def __init__(
        self,
        capacity: int = 8192,
        reinit_prob: float = 0.05,
        sample_shape: Sequence[int] = (1, 32, 32),
        init: Literal["uniform", "gaussian"] = "uniform",
        storage: Literal["float32", "float16", "uint8"] = "float32",
    ) -> None:
        capacity = check_positive_int("capacity", capacity)
        reinit_prob = check_number("reinit_prob", reinit_prob, 0, 1)
        shape = tuple(check_positive_ints("sample_shape", sample_shape))
        check_choice("init", init, INITS)
        check_choice("storage", storage, STORAGES)
        check_allocation(
            "replay buffer storage (capacity, *sample_shape)",
            (capacity, *shape),
            dtype=getattr(torch, storage),
            error=ConfigError,
        )
        self.capacity = capacity
        self.reinit_prob = reinit_prob
        self.sample_shape = shape
        self.init = init
        self.storage = torch.zeros(capacity, *shape, dtype=getattr(torch, storage))
        self.count = 0
        self.pointer = 0
        self._initializer: Initializer | None = None

    # -- state -------------------------------------------------------------------

    def __len__(self) -> int:
        return self.count

    @property
    def device(self) -> torch.device:
        return self.storage.device

    def to(self, device: torch.device | str) -> ReplayBuffer:
        """Move the stored samples to ``device`` (in place); returns self."""
        self.storage = self.storage.to(device)
        return self

    def set_initializer(self, fn: Initializer | None) -> None:
        """Use ``fn(n, generator) -> (n, *sample_shape)`` for fresh samples (None = back to ``init``)."""
        self._initializer = fn

    def fresh(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` new chain starts (n, *sample_shape) on the buffer's device."""
        shape = (n, *self.sample_shape)
        if self._initializer is not None:
            x = self._initializer(n, generator)
            if tuple(x.shape) != shape:
                raise ValueError(f"initializer returned shape {tuple(x.shape)}; expected {shape}")
            return x.to(device=self.device, dtype=torch.float32)
        if self.init == "gaussian":
            return torch.randn(shape, generator=generator, device=self.device)
        return torch.rand(shape, generator=generator, device=self.device).mul_(2.0).sub_(1.0)

    # -- the book's two operations -------------------------------------------------

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Chain starts for one training step.

        Returns:
            x: (batch_size, *sample_shape), a new tensor.
            indices: (batch_size,) int64, the storage slot each row came from, -1 for fresh noise.
        """
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected a positive integer")
        check_allocation("replay buffer draw (batch_size, *sample_shape)", (batch_size, *self.sample_shape))
        if self.count == 0:
            self.push(self.fresh(batch_size, generator))
        restart = torch.rand(batch_size, generator=generator, device=self.device) < self.reinit_prob
        indices = torch.randint(self.count, (batch_size,), generator=generator, device=self.device)
        x = self._decode(self.storage[indices])
        if self.reinit_prob > 0.0:
            mask = restart.view(batch_size, *([1] * len(self.sample_shape)))
            x = torch.where(mask, self.fresh(batch_size, generator), x)
            indices = indices.masked_fill(restart, -1)
        return x, indices

    def push(self, samples: Tensor) -> None:
        """Store refined samples (n, *sample_shape), overwriting the oldest when full.

        Like the book (prepend, then keep the first ``capacity``), a batch larger
        than the capacity keeps its first ``capacity`` rows.
        """
        if samples.ndim < 1 or tuple(samples.shape[1:]) != self.sample_shape:
            expected = ", ".join(map(str, self.sample_shape))
            raise ValueError(f"pushed samples have shape {tuple(samples.shape)}; expected (n, {expected})")
        check_floating("pushed samples", samples)
        check_finite("pushed samples", samples)
        samples = self._encode(samples.detach()[: self.capacity])
        n = samples.shape[0]
        first = min(n, self.capacity - self.pointer)
        self.storage[self.pointer : self.pointer + first] = samples[:first]
        if first < n:
            self.storage[: n - first] = samples[first:]
        self.pointer = (self.pointer + n) % self.capacity
        self.count = min(self.count + n, self.capacity)

    def _encode(self, samples: Tensor) -> Tensor:
        """Samples -> the storage dtype (uint8: round((x + 1) * 127.5) after clipping to [-1, 1])."""
        if self.storage.dtype == torch.uint8:
            return torch.round((samples.float().clamp(-1.0, 1.0) + 1.0) * _UINT8_SCALE).to(torch.uint8)
        return samples.to(self.storage.dtype)

    def _decode(self, stored: Tensor) -> Tensor:
        """Stored rows -> float32 samples."""
        if stored.dtype == torch.uint8:
            return stored.float() / _UINT8_SCALE - 1.0
        return stored.float()

    def stored_samples(self) -> Tensor:
        """The filled slots [0, count) as float32 samples (count, *sample_shape)."""
        return self._decode(self.storage[: self.count])

    # -- saving ------------------------------------------------------------------------

    def state_tensors(self) -> dict[str, Tensor]:
        """``samples`` (the filled slots [0, count) in slot order), ``count`` and ``pointer`` (int64 scalars)."""
        return {
            "samples": self.storage[: self.count],
            "count": torch.tensor(self.count, dtype=torch.int64),
            "pointer": torch.tensor(self.pointer, dtype=torch.int64),
        }

    def load_state_tensors(self, tensors: Mapping[str, Tensor], source: str = "state") -> None:
        """Restore what :meth:`state_tensors` saved; sampling then continues exactly as before saving."""
        expected = {"samples", "count", "pointer"}
        if set(tensors) != expected:
            raise CheckpointError(
                f"{source} does not fit the replay buffer: tensors {sorted(tensors)}; expected {sorted(expected)}"
            )
        samples = tensors["samples"]
        for key in ("count", "pointer"):
            if tensors[key].ndim != 0 or tensors[key].dtype != torch.int64:
                raise CheckpointError(
                    f"{source}: {key} is a {tuple(tensors[key].shape)} {tensors[key].dtype} tensor; "
                    "expected an int64 scalar"
                )
        if self.storage.is_floating_point():
            check_floating(f"{source}: samples", samples, CheckpointError)
        check_finite(f"{source}: samples", samples, CheckpointError)
        count, pointer = int(tensors["count"]), int(tensors["pointer"])
        both_float = samples.is_floating_point() and self.storage.is_floating_point()
        if samples.dtype != self.storage.dtype and not both_float:
            raise CheckpointError(
                f"{source}: samples of dtype {samples.dtype} do not fit a buffer that stores {self.storage.dtype}"
            )
        if tuple(samples.shape[1:]) != self.sample_shape or samples.shape[0] != count:
            raise CheckpointError(
                f"{source}: samples of shape {tuple(samples.shape)} with count {count}; "
                f"expected ({count}, {', '.join(map(str, self.sample_shape))})"
            )
        full = count == self.capacity
        if not 0 <= count <= self.capacity or not 0 <= pointer < self.capacity or (not full and pointer != count):
            raise CheckpointError(
                f"{source}: count={count}, pointer={pointer} do not fit a buffer of capacity {self.capacity}"
            )
        self.storage.zero_()
        self.storage[:count] = samples.to(device=self.device, dtype=self.storage.dtype)
        self.count, self.pointer = count, pointer

    def __repr__(self) -> str:
        return (
            f"ReplayBuffer(capacity={self.capacity}, reinit_prob={self.reinit_prob}, "
            f"sample_shape={self.sample_shape}, init={self.init!r}, count={self.count})"
        )
