"""The MNIST evaluation kit: a digit classifier, its trainer, and sample-quality scores on its features.

The Inception network of FID / KID is not available offline and does not fit
28 x 28 digits, so thermogen ships a small MNIST classifier
(``thermogen/mnist/weights``, >= 99 % test accuracy) and computes on its
penultimate features

- FD (Fréchet distance, "FID" on these features) and KID, with the generic
  :mod:`thermogen.metrics`;
- :func:`confident_fraction` and :func:`class_entropy` (legibility and diversity of the digits);

all in one call by :func:`evaluate_images`; :func:`real_data_floor` gives what
real images score at the same sample count. Values are only comparable with
values computed with the same classifier.

- :mod:`thermogen.mnist.classifier`: :class:`MNISTClassifier`, :func:`load_classifier`, :func:`save_classifier`;
- :mod:`thermogen.mnist.train_classifier`: :func:`train_classifier` (how the shipped weights were made);
- :mod:`thermogen.mnist.evaluate`: the scores.

The dataset reader itself is :class:`thermogen.data.MNIST`.
"""

from thermogen.mnist.classifier import CLASSIFIER_DIR, MNISTClassifier, load_classifier, save_classifier
from thermogen.mnist.evaluate import (
    class_counts,
    class_entropy,
    classify,
    confident_fraction,
    evaluate_images,
    feature_embedding,
    real_data_floor,
    reference_features,
)
from thermogen.mnist.train_classifier import accuracy, random_shift, train_classifier

__all__ = [
    "CLASSIFIER_DIR",
    "MNISTClassifier",
    "accuracy",
    "class_counts",
    "class_entropy",
    "classify",
    "confident_fraction",
    "evaluate_images",
    "feature_embedding",
    "load_classifier",
    "random_shift",
    "real_data_floor",
    "reference_features",
    "save_classifier",
    "train_classifier",
]
