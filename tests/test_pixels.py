"""The unit range [0, 1] and the signed range [-1, 1]: exact values, clipping, round trips, dtypes."""

from __future__ import annotations

import torch

from thermogen.pixels import to_signed_range, to_unit_range


def test_black_grey_and_white_map_exactly() -> None:
    unit = torch.tensor([0.0, 0.25, 0.5, 1.0])
    signed = torch.tensor([-1.0, -0.5, 0.0, 1.0])
    assert torch.equal(to_signed_range(unit), signed)
    assert torch.equal(to_unit_range(signed), unit)


def test_unit_range_clips_what_leaves_the_signed_range() -> None:
    assert torch.equal(to_unit_range(torch.tensor([-3.0, -1.0001, 1.0001, 7.0])), torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert torch.equal(to_signed_range(torch.tensor([-0.5, 1.5])), torch.tensor([-2.0, 2.0]))  # no clipping here


def test_round_trips_and_dtypes() -> None:
    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(to_unit_range(to_signed_range(images)).double(), images, atol=1e-7)  # float32 out
    assert to_signed_range(images).dtype == torch.float64
    assert to_unit_range(to_signed_range(images).to(torch.bfloat16)).dtype == torch.float32
    assert to_signed_range(images).shape == images.shape
