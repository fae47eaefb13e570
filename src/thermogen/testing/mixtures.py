"""The named Gaussian mixtures samplers are measured on (tests and benchmarks/sampler_quality.py).

Each is a 2-D :class:`GaussianMixture`; its exact noise predictor is
``NoisyMixturePredictor(mixture)``, so every error measured with it is the
sampler's. They differ in how stiff the probability-flow ODE is near the data:

* ``three_modes``: weights 0.5/0.3/0.2, std 0.3, modes >= 8.8 std apart.
* ``ring8``: 8 equal modes on a circle of radius 2, std 0.1 (neighbours 15 std
  apart): many modes, thin ones.
* ``unequal``: four modes, weights 0.64/0.24/0.08/0.04, stds 0.25/0.1/0.05/0.03;
  the rarest modes are the thinnest, so a sampler that blurs or drops them shows.
"""

from __future__ import annotations

import math

from thermogen.testing.gaussian_mixture import GaussianMixture


def three_modes() -> GaussianMixture:
    """Three modes, weights 0.5/0.3/0.2, std 0.3 (the first benchmark mixture)."""
    return GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])


def ring8() -> GaussianMixture:
    """Eight equal modes at radius 2, angles k pi / 4, std 0.1."""
    angles = [k * math.pi / 4 for k in range(8)]
    return GaussianMixture([[2.0 * math.cos(u), 2.0 * math.sin(u)] for u in angles], [0.1] * 8)


def unequal() -> GaussianMixture:
    """Four well-separated modes of unequal weight (0.64/0.24/0.08/0.04) and std (0.25/0.1/0.05/0.03)."""
    return GaussianMixture(
        [[-1.5, -0.5], [1.5, -1.0], [0.5, 1.8], [-0.8, 1.6]], [0.25, 0.1, 0.05, 0.03], [0.64, 0.24, 0.08, 0.04]
    )


MIXTURES = {"three_modes": three_modes, "ring8": ring8, "unequal": unequal}
"""Name -> constructor of every benchmark mixture."""
