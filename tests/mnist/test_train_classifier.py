"""Training the MNIST classifier: the augmentation, the learning rates, and a run on a task it must solve."""

from __future__ import annotations

import gzip
import math
from itertools import product
from pathlib import Path

import numpy as np
import pytest
import torch

from thermogen.mnist import random_shift, train_classifier


def test_random_shift_moves_each_image_by_its_own_offset() -> None:
    images = torch.zeros(400, 1, 32, 32)
    images[:, 0, 16, 16] = 1.0
    shifted = random_shift(images, 2, torch.Generator().manual_seed(6))
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(400))  # the dot stays inside, unchanged
    position = shifted[:, 0].flatten(1).argmax(dim=1)
    offsets = set(zip((position // 32 - 16).tolist(), (position % 32 - 16).tolist()))
    assert offsets == set(product(range(-2, 3), repeat=2))
    again = random_shift(images, 2, torch.Generator().manual_seed(6))
    assert torch.equal(shifted, again)
    assert random_shift(images, 0) is images


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.tobytes()))


def synthetic_mnist(root: Path, per_class: int = 40) -> Path:
    """Ten 'digits', each a bright bar at its own row band: a linear classifier separates them perfectly."""
    from thermogen.data.mnist import MNIST_FILES

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", per_class // 4)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), n)
        images = rng.integers(0, 40, (labels.size, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label : 4 + 2 * label, 4:24] = 255
        image_name, label_name = MNIST_FILES[split]
        _write_idx(root / image_name, 0x803, images)
        _write_idx(root / label_name, 0x801, labels)
    return root


def test_classifier_training_learns_a_separable_task(tmp_path: Path) -> None:
    data = synthetic_mnist(tmp_path / "mnist")
    model, test_accuracy = train_classifier(
        data,
        epochs=4,
        batch_size=20,
        warmup_steps=5,
        augment=0,
        widths=(4, 8, 8),
        feature_dims=16,
        learning_rate=1e-2,
    )
    assert test_accuracy >= 0.9  # chance is 0.1; the untrained network scores about that
    assert not model.training


def test_learning_rates_warm_up_linearly_then_fall_as_a_cosine(tmp_path: Path, monkeypatch) -> None:
    """The rate of each step, read from the optimizer: (s + 1) / W * lr during the warm-up, then
    lr * (1 + cos(pi (s - W) / (S - W))) / 2 down to 0 at the last of S steps."""
    seen: list[float] = []
    step = torch.optim.AdamW.step

    def record(self: torch.optim.AdamW, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", record)
    data = synthetic_mnist(tmp_path / "mnist", per_class=10)  # 100 images: 5 steps per epoch of 20
    train_classifier(data, epochs=4, batch_size=20, warmup_steps=6, augment=0, widths=(4,), feature_dims=4)
    total, warmup, lr = 20, 6, 3e-3
    expected = [
        (s + 1) / warmup * lr if s < warmup else lr * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
        for s in range(total)
    ]
    assert len(seen) == total
    assert seen == pytest.approx(expected, rel=1e-12, abs=0)
