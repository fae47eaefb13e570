"""Tests of the tests: the statistical acceptance rules reject the near misses they are meant to catch.

For each rule used by a sampler test, draw exact samples from the right law
(must pass) and from each wrong law named in the rule's docstring (must fail), at
the sample size and with the allowances that the sampler test uses. Seeds are
fixed, so the outcome is deterministic; the margins (printed in the failure
messages) are several standard errors wide, so a new seed would not change it.
"""

from __future__ import annotations

import pytest
import torch

from thermogen.testing import GaussianMixture
from thermogen.testing.conformance.mixture import mixture_mismatches

# tests/test_samplers.py: three separated modes, N = 5,000, allowances for discretisation error
DIFFUSION_MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
DIFFUSION_N, DIFFUSION_BIAS = 5000, {"mean_bias": 0.2, "std_bias": 0.12}
# tests/test_ebm_components.py: three overlapping modes, 4,000 chains
EBM_MIX = GaussianMixture([[-1.3, 0.0], [1.3, 0.0], [0.0, 1.6]], [0.7, 0.7, 0.7], [0.5, 0.3, 0.2])
EBM_N, EBM_BIAS = 4000, {"mean_bias": 0.02, "std_bias": 0.02}


def moment_matched_gaussian(mix: GaussianMixture, n: int, generator: torch.Generator) -> torch.Tensor:
    """A single Gaussian with the mixture's mean and covariance."""
    big = mix.sample(200_000, torch.Generator().manual_seed(7), dtype=torch.float64)
    mean, cov = big.mean(0), torch.cov(big.T)
    root = torch.linalg.cholesky(cov)
    return mean + torch.randn(n, mix.dim, generator=generator, dtype=torch.float64) @ root.T


def wrong_laws(mix: GaussianMixture) -> dict[str, GaussianMixture | str]:
    return {
        "stds x1.5": GaussianMixture(mix.means, mix.stds * 1.5, mix.weights),
        "means shrunk 10 %": GaussianMixture(mix.means * 0.9, mix.stds, mix.weights),
        "weights (0.45, 0.33, 0.22)": GaussianMixture(mix.means, mix.stds, [0.45, 0.33, 0.22]),
        "moment-matched single Gaussian": "gaussian",
    }


@pytest.mark.parametrize(
    ("mix", "n", "bias"),
    [(DIFFUSION_MIX, DIFFUSION_N, DIFFUSION_BIAS), (EBM_MIX, EBM_N, EBM_BIAS)],
    ids=["diffusion", "ebm"],
)
def test_the_mixture_rule_accepts_exact_samples(mix: GaussianMixture, n: int, bias: dict) -> None:
    for seed in range(5):
        sample = mix.sample(n, torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
        assert not mixture_mismatches(sample, mix, **bias), seed


@pytest.mark.parametrize("wrong", list(wrong_laws(DIFFUSION_MIX)))
@pytest.mark.parametrize(
    ("mix", "n", "bias"),
    [(DIFFUSION_MIX, DIFFUSION_N, DIFFUSION_BIAS), (EBM_MIX, EBM_N, EBM_BIAS)],
    ids=["diffusion", "ebm"],
)
def test_the_mixture_rule_rejects_near_misses(mix: GaussianMixture, n: int, bias: dict, wrong: str) -> None:
    law = wrong_laws(mix)[wrong]
    for seed in range(5):
        generator = torch.Generator().manual_seed(200 + seed)
        if isinstance(law, GaussianMixture):
            sample = law.sample(n, generator, dtype=torch.float64)
        else:
            sample = moment_matched_gaussian(mix, n, generator)
        assert mixture_mismatches(sample, mix, **bias), (wrong, seed)
