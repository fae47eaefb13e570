"""The book's energy CNN: layer sizes, sign convention, initialisation, the hand-written score, save / load."""

from __future__ import annotations

import math

import pytest
import torch
from energy_helpers import tiny_cnn, uniform_images
from torch import nn

from thermogen.interfaces import EnergyModel
from thermogen.models.energy_cnn import EnergyCNN

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see tests/conftest.py


# ----------------------------------------------------------------------------------------
# EnergyCNN


def book_network(model: EnergyCNN) -> nn.Sequential:
    """The book's Keras network, layer for layer, carrying ``model``'s weights; outputs f = -E."""
    convs = [
        nn.Conv2d(1, 16, 5, 2, 2),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.Conv2d(64, 64, 3, 2, 1),
    ]
    net = nn.Sequential(
        convs[0],
        nn.SiLU(),
        convs[1],
        nn.SiLU(),
        convs[2],
        nn.SiLU(),
        convs[3],
        nn.SiLU(),
        nn.Flatten(),
        nn.Linear(256, 64),
        nn.SiLU(),
        nn.Linear(64, 1),
    )
    with torch.no_grad():
        for mine, theirs in zip(model.convs, convs):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        net[9].weight.copy_(model.dense.weight)
        net[9].bias.copy_(model.dense.bias)
        net[11].weight.copy_(model.out.weight)
        net[11].bias.copy_(model.out.bias)
    return net


def test_energy_cnn_has_the_books_76993_parameters_and_layer_sizes() -> None:
    model = EnergyCNN()
    assert sum(p.numel() for p in model.parameters()) == 76_993
    shapes = [tuple(c.weight.shape) for c in model.convs]
    assert shapes == [(16, 1, 5, 5), (32, 16, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert tuple(model.dense.weight.shape) == (64, 256) and tuple(model.out.weight.shape) == (1, 64)
    h = torch.zeros(2, 1, 32, 32)
    sizes = []
    for conv in model.convs:
        h = conv(h)
        sizes.append(h.shape[-1])
    assert sizes == [16, 8, 4, 2]
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3,)


def test_energy_is_minus_the_book_networks_output() -> None:
    torch.manual_seed(0)
    model = EnergyCNN()
    x = uniform_images(4, 32, seed=1, dtype=torch.float32)
    f = book_network(model)(x).squeeze(1)
    torch.testing.assert_close(model.negative_energy(x), f)
    torch.testing.assert_close(model(x), -f)


def test_sign_convention_on_a_hand_made_model() -> None:
    model = tiny_cnn()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.out.bias.fill_(3.0)  # the book's output f = 3 everywhere
    x = uniform_images(2, 8, seed=0)
    assert model.negative_energy(x).tolist() == [3.0, 3.0]
    assert model(x).tolist() == [-3.0, -3.0]


def test_weights_start_like_keras_glorot_uniform_with_zero_biases() -> None:
    model = EnergyCNN()
    for layer in [*model.convs, model.dense, model.out]:
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        assert layer.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0
    a, b = EnergyCNN(), EnergyCNN()
    a.reset_parameters(torch.Generator().manual_seed(5))
    b.reset_parameters(torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "dtype"),
    [
        ({}, torch.float64),
        ({}, torch.float32),
        ({"in_channels": 3, "image_size": 17, "widths": (4, 6, 5), "hidden": 7}, torch.float64),
        ({"image_size": 9, "widths": (3,), "hidden": 2}, torch.float64),
    ],
)
def test_hand_written_energy_and_score_equals_autograd(kwargs: dict, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = EnergyCNN(**kwargs).to(dtype)
    with torch.no_grad():  # non-zero biases, so every term of the backward pass is exercised
        for layer in [*model.convs, model.dense, model.out]:
            layer.bias.normal_(0.0, 0.3)
    x = torch.rand(5, model.in_channels, model.image_size, model.image_size, dtype=dtype) * 2 - 1
    energy, score = model.energy_and_score(x)
    ref_energy, ref_score = EnergyModel.energy_and_score(model, x)  # the generic autograd path
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-6}
    torch.testing.assert_close(energy, ref_energy, **tol)
    torch.testing.assert_close(score, ref_score, **tol)
    assert score.shape == x.shape and not score.requires_grad and not energy.requires_grad


def test_energy_cnn_input_shape_errors_name_the_mismatch() -> None:
    model = EnergyCNN()
    with pytest.raises(ValueError, match="image has 3 channels, model expects 1"):
        model(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="image is 28x28, model expects 32x32"):
        model.energy_and_score(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"shape \(1, 32, 32\); expected \(B, 1, 32, 32\)"):
        model(torch.zeros(1, 32, 32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 0}, "in_channels=0"),
        ({"image_size": 0}, "image_size=0"),
        ({"widths": ()}, r"widths=\[\]"),
        ({"widths": (16, 0)}, r"widths=\[16, 0\]"),
        ({"hidden": -1}, "hidden=-1"),
    ],
)
def test_energy_cnn_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnergyCNN(**kwargs)


def test_energy_cnn_save_load_round_trip(tmp_path) -> None:
    model = EnergyCNN(image_size=16, widths=(4, 8), hidden=6)
    model.save_pretrained(tmp_path / "ebm")
    loaded = EnergyModel.from_pretrained(tmp_path / "ebm")
    assert isinstance(loaded, EnergyCNN) and loaded.to_config()["_class_name"] == "energy_cnn"
    assert loaded.config == {"in_channels": 1, "image_size": 16, "widths": [4, 8], "hidden": 6}
    x = uniform_images(3, 16, seed=0, dtype=torch.float32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
