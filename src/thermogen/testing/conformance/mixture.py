"""One acceptance rule for "these samples come from this Gaussian mixture", with the power to reject near misses.

The sliced-Wasserstein distance alone is blind to small errors: with 2,000 points it
accepts a mixture whose component stds are 1.5x too large, whose means are shrunk by
10 %, or whose weights are (0.45, 0.33, 0.22) instead of (0.5, 0.3, 0.2). This rule
assigns each sample to its most responsible component and tests three things
against the truth, each at about 4 standard errors of the sample size:

* weights: Pearson's chi-square of the component counts (K - 1 degrees of freedom)
  below the 0.9999 quantile;
* means: each component's sample mean within 4 standard errors (std / sqrt(n_k)) plus
  an allowance ``mean_bias`` (in stds) for a sampler's discretisation error;
* spreads: each component's per-coordinate std within 4 standard errors
  (std / sqrt(2 n_k)) plus ``std_bias`` relative.

thermogen's tests/testing/test_statistical_power.py shows that the rule rejects each of the
near misses named above, and accepts exact samples, at the sample sizes the kit uses
(5,000 diffusion samples, 4,000 energy chains). The conformance checks and
thermogen's own tests share this one copy of the rule.
"""

from __future__ import annotations

import math

import torch

from thermogen.testing.gaussian_mixture import GaussianMixture

CHI2_9999 = {1: 15.14, 2: 18.42, 3: 21.11, 4: 23.51, 15: 44.26}
"""0.9999 quantiles of chi-square with k degrees of freedom."""


def mixture_mismatches(
    x: torch.Tensor,
    target: GaussianMixture,
    mean_bias: float = 0.02,
    std_bias: float = 0.02,
    reference_size: int = 200_000,
) -> list[str]:
    """Why samples ``x`` (N, D) do not look like ``target`` (empty list: they do).

    Samples are labelled by their most responsible component; the expected label
    shares and the per-label means and stds come from ``reference_size`` exact
    draws (so overlapping components, whose labels are not the draws' true
    components, are handled too).
    """
    reference, ref_labels = _reference(target, reference_size)
    x = x.to(torch.float64)
    n = x.shape[0]
    labels = target.component_of(x)
    k_all = target.num_components
    counts = torch.bincount(labels, minlength=k_all).double()
    shares = torch.bincount(ref_labels, minlength=k_all).double() / reference_size
    expected = n * shares
    problems = []
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    if chi2 > CHI2_9999[k_all - 1]:
        got = [round(c, 3) for c in (counts / n).tolist()]
        problems.append(f"label shares {got} vs {[round(s, 3) for s in shares.tolist()]} (chi2 {chi2:.1f})")
    for k in range(k_all):
        members, truth = x[labels == k], reference[ref_labels == k]
        n_k = members.shape[0]
        if n_k < 10:
            problems.append(f"component {k} has {n_k} samples")
            continue
        std = truth.std(0)
        mean_error = float(((members.mean(0) - truth.mean(0)).abs() / std).max())
        if mean_error > 4 / math.sqrt(n_k) + mean_bias:
            problems.append(f"component {k} mean off by {mean_error:.3f} stds (n {n_k})")
        spread_error = float((members.std(0) / std - 1).abs().max())
        if spread_error > 4 / math.sqrt(2 * n_k) + std_bias:
            problems.append(f"component {k} std off by {100 * spread_error:.1f} % (n {n_k})")
    return problems


_REFERENCES: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}


def _reference(target: GaussianMixture, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` exact draws (seed 12345) and their labels, drawn once per mixture and process."""
    key = (repr(target.to_dict()), size)
    if key not in _REFERENCES:
        reference = target.sample(size, torch.Generator().manual_seed(12345), dtype=torch.float64)
        _REFERENCES[key] = (reference, target.component_of(reference))
    return _REFERENCES[key]
