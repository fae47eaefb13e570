"""Distances between two sets of samples (rows), for checking samplers against ground truth.

* :func:`mmd_rbf` — the unbiased estimate of the squared maximum mean discrepancy
  (Gretton et al. 2012, eq. 3) with a sum of Gaussian (RBF) kernels
  ``k(x, y) = sum_h exp(-|x - y|^2 / (2 h^2))``. Its expectation is 0 for equal
  distributions, so an estimate can be slightly negative.
* :func:`sliced_wasserstein` — the sliced Wasserstein-2 distance (Rabin et al.
  2011): ``sqrt(mean over random directions u of W_2^2(u.x, u.y))``, each 1-D
  W_2 from sorted projections. Positive even for equal distributions (an
  O(1/sqrt(n)) noise floor).

Both compute in float64 and return Python floats; they are for tests and
benchmarks, not for hot loops.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_BANDWIDTHS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
_BLOCK = 2048


def _rows(x: Tensor, name: str) -> Tensor:
    if x.ndim < 1 or x.shape[0] < 2:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected at least 2 samples (rows)")
    return x.reshape(x.shape[0], -1).to(torch.float64)


def _kernel_sum(x: Tensor, y: Tensor, bandwidths: Sequence[float]) -> Tensor:
    """``sum_{i,j} k(x_i, y_j)`` in blocks of rows (memory O(block * len(y)))."""
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    scales = torch.tensor([-0.5 / h**2 for h in bandwidths], dtype=torch.float64, device=x.device)
    for start in range(0, x.shape[0], _BLOCK):
        d2 = torch.cdist(x[start : start + _BLOCK], y).pow_(2)
        total += torch.exp(d2[..., None] * scales).sum()
    return total


def mmd_rbf(x: Tensor, y: Tensor, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS) -> float:
    """Unbiased MMD^2 between samples x (n, ...) and y (m, ...) with a mixture of RBF kernels.

    ``bandwidths`` are the kernels' length scales h, in the data's units.
    """
    xs, ys = _rows(x, "x"), _rows(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x has {xs.shape[1]} values per sample, y has {ys.shape[1]}; expected the same")
    if not bandwidths or any(h <= 0 for h in bandwidths):
        raise ValueError(f"bandwidths={list(bandwidths)!r}; expected positive length scales")
    n, m, kernels = xs.shape[0], ys.shape[0], len(bandwidths)
    # sum over i != j: the diagonal contributes k(x, x) = 1 per kernel
    k_xx = (_kernel_sum(xs, xs, bandwidths) - n * kernels) / (n * (n - 1))
    k_yy = (_kernel_sum(ys, ys, bandwidths) - m * kernels) / (m * (m - 1))
    k_xy = _kernel_sum(xs, ys, bandwidths) / (n * m)
    return float(k_xx + k_yy - 2.0 * k_xy)


def sliced_wasserstein(
    x: Tensor, y: Tensor, num_projections: int = 256, generator: torch.Generator | None = None
) -> float:
    """Sliced Wasserstein-2 distance between samples x (n, ...) and y (m, ...).

    Directions are uniform on the sphere, drawn from ``generator`` (CPU). For
    n != m each 1-D distance compares the quantiles at the levels (i + 1/2) / max(n, m).
    """
    xs, ys = _rows(x, "x"), _rows(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x has {xs.shape[1]} values per sample, y has {ys.shape[1]}; expected the same")
    if num_projections < 1:
        raise ValueError(f"num_projections={num_projections!r}; expected a positive integer")
    directions = torch.randn(xs.shape[1], num_projections, generator=generator, dtype=torch.float64)
    directions = (directions / directions.norm(dim=0, keepdim=True)).to(xs.device)
    px, _ = torch.sort(xs @ directions, dim=0)
    py, _ = torch.sort(ys @ directions, dim=0)
    if px.shape[0] != py.shape[0]:
        levels = torch.arange(max(px.shape[0], py.shape[0]), dtype=torch.float64, device=xs.device) + 0.5
        levels = levels / levels.shape[0]
        px = px[(levels * px.shape[0]).long()]
        py = py[(levels * py.shape[0]).long()]
    return float((px - py).pow(2).mean().sqrt())
