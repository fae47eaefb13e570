"""Acceptance rules of the replay-buffer, interpolation and sampler-noise checks, each with the power to
reject named near misses (shown in tests/testing/test_statistical_power.py).

Each rule returns why its input does not follow the law it checks (None or an empty
list: it does). Thresholds sit at about 4 standard errors, so a correct implementation
fails with probability below 1e-4 per check and the near misses are several standard
errors beyond them at the sample sizes the tests use.
"""

from __future__ import annotations

import math

import torch

from thermogen.testing import GaussianMixture
from thermogen.testing.conformance.mixture import CHI2_9999


def fraction_mismatch(hits: int, total: int, p: float) -> str | None:
    """Do ``hits`` out of ``total`` look like Binomial(total, p)? Rejects beyond 4 standard errors.

    The replay buffer's restarts: with 25,600 draws (standard error 0.0014 at p = 0.05) this
    rejects a restart rate of 7 %, 3 %, 6 % or 4 % instead of 5 %.
    """
    fraction = hits / total
    tolerance = 4 * math.sqrt(p * (1 - p) / total)
    if abs(fraction - p) > tolerance:
        return f"fraction {fraction:.4f} vs {p} (tolerance {tolerance:.4f}, {total} draws)"
    return None


def uniform_counts_mismatch(counts: torch.Tensor) -> str | None:
    """Do category counts (k,) look like uniform multinomial draws? Pearson's chi-square below its 0.9999 quantile.

    The replay buffer's draws: with 16 slots and 12,800 draws this rejects draws biased towards
    recent slots (the newest slot 1.5x as likely as the oldest, linear in age), a slot never drawn
    (``randint(count - 1)``) and one slot drawn twice as often as the others.
    """
    counts = counts.double()
    expected = float(counts.sum()) / counts.numel()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    if chi2 > CHI2_9999[counts.numel() - 1]:
        return f"chi2 {chi2:.1f} > {CHI2_9999[counts.numel() - 1]} (counts {counts.long().tolist()})"
    return None


def unit_variance_mismatches(frames: torch.Tensor) -> list[str]:
    """Does each frame (num, ...) of noise built from N(0, 1) noises still have variance 1?

    Each frame's mean square (the mean is known to be 0) must lie within 4.5 standard errors
    (sqrt(2 / n), n values per frame) of 1. With n = 16,384 (4 x 64 x 64) this rejects variance
    x1.2, x0.8, x1.1 or x0.9, and linear interpolation (variance 0.5 half way). It does not see
    *where* on the arc a frame sits (sqrt(f) a + sqrt(1 - f) b also keeps variance 1); the test
    pins the frames to sin/cos weights exactly.
    """
    flat = frames.double().flatten(1)
    tolerance = 4.5 * math.sqrt(2 / flat.shape[1])
    variances = flat.square().mean(dim=1)
    return [
        f"frame {i}: variance {float(v):.4f} (tolerance {tolerance:.4f})"
        for i, v in enumerate(variances)
        if abs(float(v) - 1) > tolerance
    ]


def pooled_spread_error(x: torch.Tensor, target: GaussianMixture, reference_size: int = 200_000) -> float:
    """The pooled std of ``x`` (N, D) around its components, relative to the truth, minus 1.

    Each sample is labelled by its most responsible component and standardised by that
    component's mean and per-coordinate std (from ``reference_size`` exact draws); the
    root mean square of all N * D standardised values, minus 1, is returned. Its standard
    error is 1 / sqrt(2 N D): 0.005 at N = 10,000, D = 2, a fifth of the per-component
    std check of :func:`thermogen.testing.conformance.mixture.mixture_mismatches` on the smallest component.
    """
    reference = target.sample(reference_size, torch.Generator().manual_seed(12345), dtype=torch.float64)
    ref_labels = target.component_of(reference)
    x = x.to(torch.float64)
    labels = target.component_of(x)
    standardised = []
    for k in range(target.num_components):
        truth = reference[ref_labels == k]
        standardised.append((x[labels == k] - truth.mean(0)) / truth.std(0))
    return float(torch.cat(standardised).square().mean().sqrt()) - 1


def spread_tolerance(n: int, dim: int, bias: float) -> float:
    """4 standard errors of :func:`pooled_spread_error` plus an allowance ``bias`` for discretisation error."""
    return 4 / math.sqrt(2 * n * dim) + bias
