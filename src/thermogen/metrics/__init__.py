"""Generic sample-quality metrics on feature vectors: Fréchet distance and KID.

- :func:`frechet_distance` / :func:`frechet_distance_from_features` (FD; "FID" when the
  features are Inception's),
- :func:`kernel_inception_distance` (KID, unbiased MMD² with a cubic kernel).

They take features from any network. The MNIST kit (:mod:`thermogen.mnist`) computes
them on its own digit classifier's features, next to a real-data floor.
"""

from thermogen.metrics.frechet import frechet_distance, frechet_distance_from_features, gaussian_statistics
from thermogen.metrics.kid import KID, kernel_inception_distance

__all__ = [
    "KID",
    "frechet_distance",
    "frechet_distance_from_features",
    "gaussian_statistics",
    "kernel_inception_distance",
]
