"""Fréchet distance between Gaussians fitted to two feature sets (the "F" of FID).

For N(mu1, S1) and N(mu2, S2) the squared 2-Wasserstein distance is

    d² = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½)

(Dowson & Landau 1982; used on Inception features as FID by Heusel et al. 2017,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium"). ``tr((S1^½ S2 S1^½)^½)`` equals ``tr((S1 S2)^½)``, but the
symmetric form is computed with two symmetric eigendecompositions, needs no
scipy and has no complex round-off. Everything is in float64.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    """Square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues -> 0)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Fréchet distance d² between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1: mean (D,) of the first Gaussian.
        sigma1: its covariance (D, D), symmetric positive semi-definite.
        mu2: mean (D,) of the second Gaussian.
        sigma2: its covariance (D, D), symmetric positive semi-definite.

    Returns:
        d² >= 0 (a squared distance, as FID reports it), as a Python float.
    """
    mu1, mu2, sigma1, sigma2 = (torch.as_tensor(t, dtype=torch.float64).cpu() for t in (mu1, mu2, sigma1, sigma2))
    dims = mu1.shape[0]
    if mu1.shape != (dims,) or mu2.shape != (dims,) or sigma1.shape != (dims, dims) or sigma2.shape != (dims, dims):
        raise ValueError(
            f"shapes mu1 {tuple(mu1.shape)}, sigma1 {tuple(sigma1.shape)}, mu2 {tuple(mu2.shape)}, "
            f"sigma2 {tuple(sigma2.shape)}; expected (D,), (D, D), (D,), (D, D) with one D"
        )
    sigma1 = (sigma1 + sigma1.T) / 2
    sigma2 = (sigma2 + sigma2.T) / 2
    root1 = _sqrtm_psd(sigma1)
    product = root1 @ sigma2 @ root1
    cross = torch.linalg.eigvalsh((product + product.T) / 2).clamp(min=0).sqrt().sum()
    distance = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * cross
    return max(float(distance), 0.0)


def gaussian_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of ``features`` (N, D), N >= 2, in float64."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features have shape {tuple(features.shape)}; expected (N, D) with N >= 2")
    x = features.detach().to("cpu", torch.float64)
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def frechet_distance_from_features(features1: Tensor, features2: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to ``features1`` (N1, D) and ``features2`` (N2, D).

    The estimate is biased upwards for finite N (it does not vanish for two
    samples of one distribution); compare numbers at equal N, or against a
    real-data floor at the same N (see :func:`thermogen.mnist.real_data_floor`).
    """
    if features1.ndim != 2 or features2.ndim != 2 or features1.shape[1] != features2.shape[1]:
        raise ValueError(
            f"feature sets have shapes {tuple(features1.shape)} and {tuple(features2.shape)}; "
            "expected (N1, D) and (N2, D) with one D"
        )
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


__all__ = ["frechet_distance", "frechet_distance_from_features", "gaussian_statistics"]
