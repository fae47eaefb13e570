"""Sample quality of MNIST-like images, measured with thermogen's own digit classifier.

:func:`evaluate_images` runs generated images (N, 1, 32, 32) in [0, 1] through
the classifier shipped in ``thermogen/mnist/weights`` and reports

- ``fd``: Fréchet distance between its penultimate features of the samples and
  of the 10,000 MNIST test images (:mod:`thermogen.metrics.frechet`);
- ``kid_mean``, ``kid_std``: KID on the same features (:mod:`thermogen.metrics.kid`);
- ``confident_fraction``: share of samples the classifier gives a class with
  probability >= 0.9 (legible digits). Alone it can be fooled: uniform noise
  images are all "confidently" one digit; read it with FD and class entropy;
- ``class_entropy``: entropy of the histogram of predicted classes (diversity;
  ln 10 ≈ 2.303 when all ten digits are equally frequent, 0 when one is);
- ``n``: number of samples.

FD and KID on these features are not on the Inception (FID) scale, and FD is
biased upwards at small N: read them next to :func:`real_data_floor`, the same
metrics for N real training images, which is what a perfect generator would get.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from thermogen.data import MNIST
from thermogen.data.mnist import resolve_mnist_dir
from thermogen.metrics.frechet import frechet_distance_from_features
from thermogen.metrics.kid import kernel_inception_distance
from thermogen.mnist.classifier import MNISTClassifier, load_classifier
from thermogen.normalizer import Normalizer


@functools.cache
def _shipped_classifier() -> MNISTClassifier:
    return load_classifier()


# ----------------------------------------------------------------------------- class scores


def confident_fraction(probs: Tensor, threshold: float = 0.9) -> float:
    """Share of rows of ``probs`` (N, K) whose largest class probability is >= ``threshold``; in [0, 1]."""
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs have shape {tuple(probs.shape)}; expected (N, K) with N >= 1")
    return float((probs.max(dim=1).values >= threshold).double().mean())


def class_counts(probs: Tensor) -> list[int]:
    """How many rows of ``probs`` (N, K) have each class as their arg-max: K ints summing to N (the histogram
    of predicted classes; for MNIST, how often each digit 0-9 was drawn)."""
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs have shape {tuple(probs.shape)}; expected (N, K) with N >= 1")
    return [int(c) for c in torch.bincount(probs.argmax(dim=1).cpu(), minlength=probs.shape[1])]


def class_entropy(probs: Tensor) -> float:
    """Entropy (nats) of the histogram of arg-max classes of ``probs`` (N, K): in [0, ln K].

    ``-Σ_k p_k ln p_k`` with ``p_k`` the share of rows predicted as class k
    (0 ln 0 = 0). For MNIST (K = 10) the maximum is ln 10 ≈ 2.303: every digit
    equally often; a generator that collapses onto one digit scores 0.
    """
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probs have shape {tuple(probs.shape)}; expected (N, K) with N >= 1")
    counts = torch.tensor(class_counts(probs), dtype=torch.float64)
    shares = counts / counts.sum()
    return float(-(shares * torch.log(shares.clamp(min=1e-300))).sum()) + 0.0  # + 0.0: no -0.0 for one class


# ----------------------------------------------------------------------------- classifier outputs


@torch.inference_mode()
def classify(images: Tensor, classifier: MNISTClassifier, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Features (N, F) and class probabilities (N, 10) of ``images`` (N, 1, 32 | 28, 32 | 28) in [0, 1].

    Runs in batches of ``batch_size`` on the classifier's device (in eval mode);
    returns float32 CPU tensors.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}; expected a positive integer")
    parameter = next(classifier.parameters())
    was_training = classifier.training
    classifier.eval()
    features, probs = [], []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(parameter.device, parameter.dtype)
        h = classifier.features(batch)
        features.append(h.float().cpu())
        probs.append(classifier.head(h).float().softmax(dim=1).cpu())
    classifier.train(was_training)
    return torch.cat(features), torch.cat(probs)


@functools.lru_cache(maxsize=4)
def _shipped_reference(mnist_dir: str) -> Tensor:
    test = MNIST(mnist_dir, split="test", preprocess="diffusion", download=False)
    return classify(test.images, _shipped_classifier())[0]


def reference_features(
    data_dir: str | os.PathLike[str] | None = None, classifier: MNISTClassifier | None = None
) -> Tensor:
    """Features (10000, F) of the MNIST test images: the reference distribution.

    With the shipped classifier (``classifier=None``) the result is cached per
    data folder for the life of the process.
    """
    directory = resolve_mnist_dir(data_dir, split="test")
    if classifier is None:
        return _shipped_reference(str(directory))
    test = MNIST(directory, split="test", preprocess="diffusion", download=False)
    return classify(test.images, classifier)[0]


# ----------------------------------------------------------------------------- the metrics


def evaluate_images(
    images: Tensor,
    reference: Tensor | None = None,
    classifier: MNISTClassifier | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 500,
    kid_subset_size: int = 1000,
    kid_num_subsets: int = 10,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """FD, KID, confident fraction and class entropy of ``images`` against MNIST.

    Args:
        images: (N, 1, 32, 32) (or unpadded (N, 1, 28, 28)) in [0, 1], black
            background = 0, N >= 2. EBM samples in [-1, 1] must be mapped with
            ``(x + 1) / 2`` first (:func:`thermogen.pixels.to_unit_range`).
        reference: features (M, F) to compare with; default the MNIST test set's
            (:func:`reference_features`, cached).
        classifier: feature extractor; default the shipped one (:func:`thermogen.mnist.classifier.load_classifier`).
        data_dir: MNIST folder for the default reference.
        batch_size: classifier batch size.
        kid_subset_size: samples per KID subset (``subset_size`` of :func:`kernel_inception_distance`).
        kid_num_subsets: KID subsets averaged (``num_subsets`` of :func:`kernel_inception_distance`).
        generator: draws the KID subsets (default: seeded 0, reproducible).

    Returns:
        ``{"fd", "kid_mean", "kid_std", "confident_fraction", "class_entropy", "class_counts", "n"}``
        (floats; ``class_counts`` the 10 ints of :func:`class_counts`; ``n`` an int).
    """
    if images.ndim != 4 or images.shape[0] < 2:
        raise ValueError(f"images have shape {tuple(images.shape)}; expected (N, 1, 32, 32) with N >= 2")
    low, high = float(images.min()), float(images.max())
    if not (math.isfinite(low) and math.isfinite(high)) or low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"images have values in [{low:.3g}, {high:.3g}]; expected [0, 1] "
            "(map EBM samples from [-1, 1] with (x + 1) / 2: thermogen.pixels.to_unit_range)"
        )
    model = classifier if classifier is not None else _shipped_classifier()
    if reference is None:
        reference = reference_features(data_dir, classifier)
    features, probs = classify(images, model, batch_size)
    kid = kernel_inception_distance(features, reference, kid_subset_size, kid_num_subsets, generator)
    return {
        "fd": frechet_distance_from_features(features, reference),
        "kid_mean": kid.mean,
        "kid_std": kid.std,
        "confident_fraction": confident_fraction(probs),
        "class_entropy": class_entropy(probs),
        "class_counts": class_counts(probs),
        "n": int(images.shape[0]),
    }


def real_data_floor(
    n: int,
    data_dir: str | os.PathLike[str] | None = None,
    classifier: MNISTClassifier | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`evaluate_images` of ``n`` real MNIST *training* images (a seeded random subset) vs the test set.

    What a generator that reproduces the data distribution would score at the
    same N: the floor of FD (biased upwards at finite N) and KID, and the
    typical confident fraction and class entropy of real digits. ``kwargs`` go
    to :func:`evaluate_images`.
    """
    train = MNIST(data_dir, split="train", preprocess="diffusion")
    if not 2 <= n <= len(train):
        raise ValueError(f"n={n}; expected between 2 and {len(train)} (the MNIST training images)")
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    return evaluate_images(train.images[index], classifier=classifier, data_dir=data_dir, **kwargs)


def feature_embedding(normalizer: Normalizer, classifier: MNISTClassifier | None = None) -> Callable[[Tensor], Tensor]:
    """``x0`` in a pipeline's model space (B, 1, 28 | 32, 28 | 32) -> the classifier's features (B, 128) of the
    image it stands for (``normalizer.denormalize``, clipped to [0, 1]).

    The distance :func:`thermogen.samplers.diffusion.tuning.fit_timesteps` minimises when given as its
    ``embed`` (``thermogen tune-steps --distance mnist-features``): a fit in the space FD is measured in.
    """
    net = classifier if classifier is not None else load_classifier()

    @torch.inference_mode()
    def embed(x0: Tensor) -> Tensor:
        return net.features(normalizer.denormalize(x0.float()).clamp(0.0, 1.0))

    return embed


__all__ = [
    "class_counts",
    "class_entropy",
    "classify",
    "confident_fraction",
    "evaluate_images",
    "feature_embedding",
    "real_data_floor",
    "reference_features",
]
