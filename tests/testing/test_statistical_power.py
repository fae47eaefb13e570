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
from statistical_rules import (
    fraction_mismatch,
    pooled_spread_error,
    spread_tolerance,
    uniform_counts_mismatch,
    unit_variance_mismatches,
)

from thermogen.buffers import ReplayBuffer
from thermogen.pipelines.diffusion import interpolate_noise
from thermogen.testing import GaussianMixture
from thermogen.testing.conformance.mixture import mixture_mismatches

# tests/samplers/diffusion/test_samplers.py: three separated modes, N = 5,000, allowances for discretisation error
DIFFUSION_MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
DIFFUSION_N, DIFFUSION_BIAS = 5000, {"mean_bias": 0.2, "std_bias": 0.12}
# tests/samplers/energy/test_energy_samplers.py: three overlapping modes, 4,000 chains
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


# ----------------------------------------------------------------------------------------
# tests/test_registry.py: the plugin schedule's DDIM loop, two modes, 5,000 samples
PLUGIN_MIX = GaussianMixture([[-2.0, 0.0], [2.0, 0.0]], [0.3, 0.3], [0.5, 0.5])
PLUGIN_N, PLUGIN_BIAS = 5000, {"mean_bias": 0.15, "std_bias": 0.15}
PLUGIN_WRONG = {
    "weights (0.55, 0.45)": GaussianMixture(PLUGIN_MIX.means, PLUGIN_MIX.stds, [0.55, 0.45]),
    "weights (0.45, 0.55)": GaussianMixture(PLUGIN_MIX.means, PLUGIN_MIX.stds, [0.45, 0.55]),
    "means shrunk 5 %": GaussianMixture(PLUGIN_MIX.means * 0.95, PLUGIN_MIX.stds, PLUGIN_MIX.weights),
    "stds x1.3": GaussianMixture(PLUGIN_MIX.means, PLUGIN_MIX.stds * 1.3, PLUGIN_MIX.weights),
    "stds x0.7": GaussianMixture(PLUGIN_MIX.means, PLUGIN_MIX.stds * 0.7, PLUGIN_MIX.weights),
}


@pytest.mark.parametrize("wrong", [None, *PLUGIN_WRONG])
def test_the_plugin_loop_rule_rejects_wrong_mode_weights(wrong: str | None) -> None:
    law = PLUGIN_MIX if wrong is None else PLUGIN_WRONG[wrong]
    for seed in range(5):
        sample = law.sample(PLUGIN_N, torch.Generator().manual_seed(300 + seed), dtype=torch.float64)
        problems = mixture_mismatches(sample, PLUGIN_MIX, **PLUGIN_BIAS)
        assert bool(problems) == (wrong is not None), (wrong, seed, problems)


# ----------------------------------------------------------------------------------------
# tests/test_replay_buffer.py: the replay buffer's restart rate and its uniform draws


@pytest.mark.parametrize("reinit_prob", [0.05, 0.07, 0.03, 0.06, 0.04])
def test_the_restart_rule_rejects_a_wrong_rate(reinit_prob: float) -> None:
    """The buffer test's draws (200 batches of 128) from buffers restarting at the wrong rate."""
    buffer = ReplayBuffer(capacity=256, reinit_prob=reinit_prob, sample_shape=(1, 4, 4))
    buffer.push(torch.zeros(256, 1, 4, 4))
    for seed in range(5):
        g = torch.Generator().manual_seed(400 + seed)
        fresh = sum(int((buffer.sample(128, g)[1] == -1).sum()) for _ in range(200))
        problem = fraction_mismatch(fresh, 25_600, 0.05)
        assert (problem is None) == (reinit_prob == 0.05), (reinit_prob, seed, problem)


def slot_weights(kind: str) -> torch.Tensor:
    """Draw probabilities over 16 slots; slots 8..15 then 0..7 from oldest to newest (the test's buffer)."""
    age_order = torch.tensor([*range(8, 16), *range(8)])
    weights = torch.ones(16, dtype=torch.float64)
    if kind == "newest 1.5x as likely as the oldest":
        weights[age_order] = torch.linspace(1.0, 1.5, 16, dtype=torch.float64)
    elif kind == "newest slot never drawn":
        weights[7] = 0.0
    elif kind == "one slot twice as likely":
        weights[3] = 2.0
    return weights / weights.sum()


@pytest.mark.parametrize(
    "kind", ["uniform", "newest 1.5x as likely as the oldest", "newest slot never drawn", "one slot twice as likely"]
)
def test_the_uniform_draw_rule_rejects_biased_draws(kind: str) -> None:
    for seed in range(5):
        g = torch.Generator().manual_seed(500 + seed)
        slots = torch.multinomial(slot_weights(kind), 12_800, replacement=True, generator=g)
        problem = uniform_counts_mismatch(torch.bincount(slots, minlength=16))
        assert (problem is None) == (kind == "uniform"), (kind, seed, problem)


# ----------------------------------------------------------------------------------------
# tests/pipelines/test_diffusion_pipeline.py: the book interpolation keeps unit variance (4 x 64 x 64 noises)


def interpolation_frames(kind: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    book = interpolate_noise(a, b, 11, "book")
    scale = {"book": 1.0, "variance x1.2": 1.2, "variance x0.8": 0.8, "variance x1.1": 1.1, "variance x0.9": 0.9}
    if kind == "linear interpolation":
        f = torch.linspace(0, 1, 11).view(11, 1, 1, 1)
        return (1 - f) * b + f * a
    return book * scale[kind] ** 0.5


@pytest.mark.parametrize(
    "kind", ["book", "variance x1.2", "variance x0.8", "variance x1.1", "variance x0.9", "linear interpolation"]
)
def test_the_unit_variance_rule_rejects_wrong_variances(kind: str) -> None:
    for seed in range(5):
        g = torch.Generator().manual_seed(600 + seed)
        a, b = torch.randn(4, 64, 64, generator=g), torch.randn(4, 64, 64, generator=g)
        problems = unit_variance_mismatches(interpolation_frames(kind, a, b))
        assert bool(problems) == (kind != "book"), (kind, seed, problems)


# ----------------------------------------------------------------------------------------
# tests/samplers/diffusion/test_samplers.py: the pooled spread of the stochastic samplers
# (10,000 samples, 1 % allowance)


@pytest.mark.parametrize("std_factor", [1.0, 1.05, 0.95, 1.09, 1.12])
def test_the_spread_rule_rejects_components_too_wide_or_too_narrow(std_factor: float) -> None:
    """Exact samples with every std scaled (x1.09 and x1.12: the spread of Euler-ancestral noise x1.1
    and DDPM variance x1.3 on offset_cosine)."""
    law = GaussianMixture(DIFFUSION_MIX.means, DIFFUSION_MIX.stds * std_factor, DIFFUSION_MIX.weights)
    tolerance = spread_tolerance(10_000, 2, 0.01)
    for seed in range(5):
        sample = law.sample(10_000, torch.Generator().manual_seed(700 + seed), dtype=torch.float64)
        error = pooled_spread_error(sample, DIFFUSION_MIX)
        assert (abs(error) <= tolerance) == (std_factor == 1.0), (std_factor, seed, error)
