"""Ground truth for tests and benchmarks: an analytic Gaussian mixture and sample distances.

* :class:`GaussianMixture` — samples and exact log-density of an isotropic mixture.
* :class:`NoisyMixturePredictor` — the exact noise prediction of that mixture under the
  variance-preserving forward process (a perfect :class:`~thermogen.NoisePredictor`).
* :class:`GaussianMixtureEnergy` — ``E(x) = -log p(x)`` with its closed-form score
  (a perfect :class:`~thermogen.EnergyModel`).
* :data:`MIXTURES` — the named 2-D mixtures samplers are measured on (``three_modes``,
  ``ring8``, ``unequal``; :mod:`thermogen.testing.mixtures`).
* :func:`mmd_rbf`, :func:`sliced_wasserstein` — distances between two sample sets.
"""

from thermogen.testing.distances import mmd_rbf, sliced_wasserstein
from thermogen.testing.gaussian_mixture import GaussianMixture, GaussianMixtureEnergy, NoisyMixturePredictor
from thermogen.testing.mixtures import MIXTURES

__all__ = [
    "MIXTURES",
    "GaussianMixture",
    "GaussianMixtureEnergy",
    "NoisyMixturePredictor",
    "mmd_rbf",
    "sliced_wasserstein",
]
