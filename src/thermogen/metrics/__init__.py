"""Sample-quality metrics for MNIST-like images, on the features of thermogen's own digit classifier.

The Inception network of FID / KID is not available offline and does not fit
28 x 28 digits, so thermogen ships a small MNIST classifier
(``pretrained/mnist-classifier``, >= 99 % test accuracy) and computes

- :func:`frechet_distance` / :func:`frechet_distance_from_features` (FD, "FID" on our features),
- :func:`kernel_inception_distance` (KID, unbiased MMD² with a cubic kernel),
- :func:`confident_fraction` and :func:`class_entropy` (legibility and diversity of the digits),

all in one call by :func:`evaluate_images`; :func:`real_data_floor` gives what
real images score at the same sample count. Values are only comparable with
values computed with the same classifier.
"""

from thermogen.metrics.evaluate import (
    CLASSIFIER_DIR,
    class_entropy,
    classify,
    confident_fraction,
    evaluate_images,
    load_classifier,
    real_data_floor,
    reference_features,
)
from thermogen.metrics.frechet import frechet_distance, frechet_distance_from_features, gaussian_statistics
from thermogen.metrics.kid import KID, kernel_inception_distance

__all__ = [
    "CLASSIFIER_DIR",
    "KID",
    "class_entropy",
    "classify",
    "confident_fraction",
    "evaluate_images",
    "frechet_distance",
    "frechet_distance_from_features",
    "gaussian_statistics",
    "kernel_inception_distance",
    "load_classifier",
    "real_data_floor",
    "reference_features",
]
