"""Generic sample-quality metrics: FD and KID against closed forms (the MNIST scores are tested in tests/mnist/)."""

from __future__ import annotations

import math
from itertools import product

import pytest
import torch

from thermogen.metrics import frechet_distance, frechet_distance_from_features, kernel_inception_distance
from thermogen.metrics.kid import mmd2_unbiased, polynomial_kernel

# ----------------------------------------------------------------------------- Fréchet distance


def test_fd_of_identical_features_is_zero() -> None:
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0)) * 3 + 1
    assert frechet_distance_from_features(features, features) == pytest.approx(0.0, abs=1e-8)


def test_fd_matches_closed_form_for_diagonal_gaussians() -> None:
    # ||m1 - m2||² + Σ_i (s1_i + s2_i - 2 sqrt(s1_i s2_i)) for S = diag(s)
    m1, m2 = torch.tensor([0.0, 1.0, -2.0, 0.5]), torch.tensor([1.0, 1.0, 0.0, 0.0])
    s1, s2 = torch.tensor([1.0, 4.0, 0.25, 2.0]), torch.tensor([9.0, 1.0, 0.25, 0.5])
    expected = float((m1 - m2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert expected == pytest.approx(5.25 + 4.0 + 1.0 + 0.5)
    assert frechet_distance(m1, torch.diag(s1), m2, torch.diag(s2)) == pytest.approx(expected, rel=1e-12)

    # ... and the estimate from samples of the two Gaussians is close to it
    generator = torch.Generator().manual_seed(1)
    x = m1 + s1.sqrt() * torch.randn(40_000, 4, generator=generator, dtype=torch.float64)
    y = m2 + s2.sqrt() * torch.randn(40_000, 4, generator=generator, dtype=torch.float64)
    assert frechet_distance_from_features(x, y) == pytest.approx(expected, rel=0.02)


def test_fd_for_non_commuting_2x2_covariances() -> None:
    # for 2x2 SPD A, B: tr((AB)^½) = sqrt(tr(AB) + 2 sqrt(det A det B))
    a = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    b = torch.tensor([[0.5, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    assert not torch.allclose(a @ b, b @ a)
    cross = math.sqrt(float((a @ b).trace()) + 2 * math.sqrt(float(torch.linalg.det(a) * torch.linalg.det(b))))
    mean = torch.tensor([0.3, -0.4], dtype=torch.float64)
    expected = 0.25 + float(a.trace() + b.trace()) - 2 * cross
    assert frechet_distance(mean, a, torch.zeros(2), b) == pytest.approx(expected, rel=1e-12)
    assert frechet_distance(torch.zeros(2), b, mean, a) == pytest.approx(expected, rel=1e-12)


def test_fd_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="expected"):
        frechet_distance_from_features(torch.zeros(10, 3), torch.zeros(10, 4))


# ----------------------------------------------------------------------------- KID


def test_mmd2_unbiased_matches_the_double_sum() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(7, 3, generator=generator, dtype=torch.float64)

    def k(u: torch.Tensor, v: torch.Tensor) -> float:
        return float((u @ v / 3 + 1) ** 3)

    m = 7
    xx = sum(k(x[i], x[j]) for i, j in product(range(m), repeat=2) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in product(range(m), repeat=2) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i, j in product(range(m), repeat=2)) / m**2
    assert float(mmd2_unbiased(x, y)) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (7, 7)


def _shifted_gaussian_mmd2(mu: torch.Tensor) -> float:
    """MMD² of N(0, I) vs N(mu, I) for k = (x·y/d + 1)³ = Σ_j C(3, j) (x·y / d)^j.

    E k(x, x') = Σ_j C(3, j) / d^j ||M_j||² with M_j the j-th moment tensor, so
    MMD² = Σ_j C(3, j) / d^j ||M_j(P) - M_j(Q)||². For N(0, I): M1 = 0, M2 = I, M3 = 0;
    for N(mu, I): M1 = mu, M2 = I + mu muᵀ, M3_abc = mu_a mu_b mu_c + mu_a δ_bc + mu_b δ_ac + mu_c δ_ab.
    """
    d = mu.shape[0]
    eye = torch.eye(d, dtype=torch.float64)
    m3 = (
        torch.einsum("a,b,c->abc", mu, mu, mu)
        + torch.einsum("a,bc->abc", mu, eye)
        + torch.einsum("b,ac->abc", mu, eye)
        + torch.einsum("c,ab->abc", mu, eye)
    )
    return float(3 / d * mu.square().sum() + 3 / d**2 * torch.outer(mu, mu).square().sum() + m3.square().sum() / d**3)


def test_kid_of_shifted_gaussians_matches_closed_form() -> None:
    mu = torch.tensor([0.5, 0.0], dtype=torch.float64)
    expected = _shifted_gaussian_mmd2(mu)
    assert expected == pytest.approx(0.375 + 0.046875 + 3.390625 / 8)
    generator = torch.Generator().manual_seed(3)
    # a pool of 20 x 1000 per set: the 20 subsets are nearly disjoint, so their mean has error ~ std / sqrt(20)
    x = torch.randn(20_000, 2, generator=generator, dtype=torch.float64)
    y = torch.randn(20_000, 2, generator=generator, dtype=torch.float64) + mu
    kid = kernel_inception_distance(x, y, subset_size=1000, num_subsets=20, generator=generator)
    assert kid.mean > 5 * kid.std > 0  # clearly positive, even per subset
    assert abs(kid.mean - expected) < 4 * kid.std / math.sqrt(20)


def test_kid_of_one_distribution_is_zero_within_its_spread() -> None:
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2000, 8, generator=generator)
    y = torch.randn(2000, 8, generator=generator)
    kid = kernel_inception_distance(x, y, subset_size=500, num_subsets=10, generator=generator)
    assert abs(kid.mean) < 3 * kid.std + 1e-3
    same = kernel_inception_distance(x, x, subset_size=500, num_subsets=10)
    assert abs(same.mean) < 3 * same.std + 1e-3
    shifted = kernel_inception_distance(x, y + 0.5, subset_size=500, num_subsets=10)
    assert shifted.mean > 10 * (abs(kid.mean) + kid.std)


def test_kid_is_reproducible_and_clips_the_subset_size() -> None:
    x, y = torch.randn(50, 4, generator=torch.Generator().manual_seed(5)), torch.randn(60, 4)
    assert kernel_inception_distance(x, y) == kernel_inception_distance(x, y)  # default generator seeded 0
    full = kernel_inception_distance(x, y[:50], subset_size=1000, num_subsets=3)
    assert full.std == pytest.approx(0.0, abs=1e-12)  # every subset is all 50 of each set
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(x[:1], y)
