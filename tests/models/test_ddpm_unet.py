"""The DDPM-style U-Net: shapes at 28/32/64, parameter count, conditioning, batch independence."""

from __future__ import annotations

import pytest
import torch

from thermogen import registry
from thermogen.models.ddpm_unet import DDPMUNet, noise_level_embedding
from thermogen.weights import load_module_state, save_tensors


@pytest.mark.parametrize(("size", "widths"), [(28, (8, 16, 32)), (32, (8, 16, 16, 32)), (64, (8, 16)), (28, (8, 8))])
def test_output_shape_equals_input_shape(size: int, widths: tuple[int, ...]) -> None:
    net = DDPMUNet(in_channels=3, image_size=size, widths=widths, block_depth=1)
    x = torch.randn(2, 3, size, size)
    assert net(x, torch.tensor([0.2, 0.8])).shape == x.shape


def test_default_parameter_count_and_registration() -> None:
    net = registry.get("models", "ddpm_unet")()
    assert sum(p.numel() for p in net.parameters()) == 3_785_377
    assert (net.in_channels, net.image_size) == (1, 28)
    bundled_size = DDPMUNet(widths=(16, 32, 64))
    assert sum(p.numel() for p in bundled_size.parameters()) == 950_097


def test_starts_by_predicting_zero_and_uses_the_noise_level() -> None:
    torch.manual_seed(0)
    net = DDPMUNet(widths=(8, 16, 32), block_depth=1).eval()
    x = torch.randn(2, 1, 28, 28)
    assert torch.count_nonzero(net(x, torch.tensor([0.3, 0.3]))) == 0  # zero-initialised head
    for p in net.parameters():  # move away from the initialisation: every block now responds
        p.data.add_(0.05 * torch.randn_like(p))
    low, high = net(x, torch.tensor([0.1, 0.1])), net(x, torch.tensor([0.9, 0.9]))
    assert (low - high).abs().max() > 1e-3


def test_a_sample_does_not_depend_on_its_batch_mates() -> None:
    torch.manual_seed(0)
    net = DDPMUNet(widths=(8, 16, 32), block_depth=1)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x, level = torch.randn(4, 1, 28, 28), torch.tensor([0.1, 0.4, 0.7, 0.9])
    together = net(x, level)
    for i in range(4):
        alone = net(x[i : i + 1], level[i : i + 1])
        torch.testing.assert_close(alone, together[i : i + 1], atol=1e-5, rtol=1e-5)


def test_embedding_closed_form() -> None:
    level = torch.tensor([0.0, 0.25, 1.0])
    features = noise_level_embedding(level, 8)
    frequencies = torch.tensor([10000.0 ** (-i / 4) for i in range(4)])
    angles = 1000.0 * level[:, None] * frequencies
    torch.testing.assert_close(features, torch.cat([torch.cos(angles), torch.sin(angles)], dim=1))


def test_config_and_safetensors_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    net = DDPMUNet(in_channels=1, image_size=28, widths=(8, 16, 32), block_depth=1, attention=False, dropout=0.1)
    for p in net.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    save_tensors(net.state_dict(), tmp_path / "model.safetensors")
    again = DDPMUNet.from_config(net.config)
    load_module_state(again, tmp_path / "model.safetensors")
    assert again.config == net.config
    x, level = torch.randn(2, 1, 28, 28), torch.tensor([0.3, 0.6])
    torch.testing.assert_close(again.eval()(x, level), net.eval()(x, level), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 30}, "image_size=30 must be a positive multiple of 4"),
        ({"widths": (8,)}, "at least two"),
        ({"block_depth": 0}, "block_depth=0"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"in_channels": 0}, "in_channels=0"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DDPMUNet(**kwargs)
