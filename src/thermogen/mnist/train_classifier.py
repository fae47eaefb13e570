"""Training the MNIST classifier whose features the sample-quality metrics use.

Cross-entropy, AdamW with a linear warm-up then cosine decay to 0 (the shared
:class:`~thermogen.training.lr_schedule.LearningRateSchedule`), batches from
the in-memory ``MNIST(preprocess="diffusion").images`` tensor (no DataLoader),
and small random translations (``augment`` px in each direction, filled with 0)
as the only augmentation. The run is a pure function of ``seed``: the weights
come from a seeded generator (:func:`thermogen.mnist.classifier.init_weights`),
the data order from :class:`~thermogen.training.batches.EpochBatches`, the
shifts from a second generator; the global RNG is never used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from thermogen.checks import check_int, check_positive_int
from thermogen.data import MNIST
from thermogen.mnist.classifier import MNISTClassifier, init_weights
from thermogen.training.batches import EpochBatches
from thermogen.training.lr_schedule import LearningRateSchedule


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Translate each image by its own (dy, dx) in [-max_shift, max_shift]², filling with 0.

    images: (B, C, H, W) -> (B, C, H, W). ``max_shift = 0`` returns the input.
    """
    if max_shift == 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (max_shift,) * 4, value=0.0)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, batch), generator=generator).to(images.device)
    rows = offsets[0, :, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(width, device=images.device)  # (B, W)
    index = torch.arange(batch, device=images.device)[:, None, None]
    # padded.permute -> (B, H', W', C); advanced indexing picks a (B, H, W, C) window per image
    window = padded.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]]
    return window.permute(0, 3, 1, 2).contiguous()


@torch.inference_mode()
def accuracy(model: MNISTClassifier, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images`` (N, 1, 32, 32) in [0, 1] whose arg-max class equals ``labels`` (N,)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        correct += int((logits.argmax(dim=1).cpu() == labels[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(images), 1)


def train_classifier(
    data_dir: str | os.PathLike[str] | None = None,
    epochs: int = 3,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    warmup_steps: int = 100,
    augment: int = 2,
    seed: int = 0,
    widths: Sequence[int] = (16, 32, 64),
    feature_dims: int = 128,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] | None = None,
) -> tuple[MNISTClassifier, float]:
    """Train an :class:`MNISTClassifier` on the 60,000 MNIST training images.

    Args:
        data_dir: folder with the four MNIST IDX files (see :class:`thermogen.data.MNIST`).
        epochs: passes over the training set.
        batch_size: images per step (the last incomplete batch of an epoch is dropped).
        learning_rate: peak AdamW learning rate, reached after ``warmup_steps``, then cosine-decayed to 0.
        weight_decay: AdamW decoupled weight decay.
        warmup_steps: steps of linear learning-rate warm-up.
        augment: largest random shift in pixels (0: no augmentation).
        seed: the whole run (weights, data order, shifts) is a function of it.
        widths: channels of the network's conv blocks (see :class:`MNISTClassifier`).
        feature_dims: size of its feature layer.
        device: where to train.
        log: called with one line per epoch (e.g. ``print``).

    Returns:
        ``(model, test_accuracy)``: the trained model in eval mode on the CPU, and
        its accuracy on the 10,000 test images (in [0, 1]).
    """
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    check_int("augment", augment, 0, 8)  # the largest shift in pixels
    train = MNIST(data_dir, split="train", preprocess="diffusion")
    test = MNIST(data_dir, split="test", preprocess="diffusion")

    model = MNISTClassifier(widths=widths, feature_dims=feature_dims)
    init_weights(model, torch.Generator().manual_seed(seed))
    # channels-last convs are ~1.5x faster on CPU; torch's stubs lack Module.to's memory_format
    model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    batches = EpochBatches(len(train), batch_size, seed=seed)
    total = epochs * batches.steps_per_epoch
    # the cosine starts where the warm-up ends (at the last step at the latest: a warm-up longer than the run)
    rates = LearningRateSchedule(
        learning_rate, total, decay="cosine", decay_start=min(warmup_steps, total - 1), warmup_steps=warmup_steps
    )
    shifts = torch.Generator().manual_seed(seed + 1)

    model.train()
    start = time.perf_counter()
    for step in range(total):
        for group in optimizer.param_groups:
            group["lr"] = rates.rate(step)
        index = batches.indices(step)
        images = random_shift(train.images[index], augment, shifts).to(device, memory_format=torch.channels_last)
        loss = F.cross_entropy(model(images), train.labels[index].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None and (step + 1) % batches.steps_per_epoch == 0:
            epoch = (step + 1) // batches.steps_per_epoch
            test_accuracy = accuracy(model, test.images, test.labels)
            log(
                f"epoch {epoch}/{epochs}: loss {float(loss.detach()):.4f}, test accuracy {test_accuracy:.4f}, "
                f"{time.perf_counter() - start:.0f} s"
            )
    model.to(device="cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
    return model, accuracy(model, test.images, test.labels)


__all__ = ["accuracy", "random_shift", "train_classifier"]
