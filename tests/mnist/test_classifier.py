"""The MNIST classifier: shapes, its own folder (save / load round trip, clear errors), the shipped weights."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from thermogen import registry
from thermogen.data import MNIST
from thermogen.errors import CheckpointError, ConfigError
from thermogen.mnist import CLASSIFIER_DIR, MNISTClassifier, classify, load_classifier, save_classifier
from thermogen.mnist.classifier import init_weights

SHIPPED_WEIGHTS_SHA256 = "c0889ab5e627cb23c720b6f0792fb1145fcd568b5287469ea1d84c3d62ddcbf5"  # weights/README.md


def test_classifier_shapes_and_28px_input() -> None:
    model = MNISTClassifier().eval()
    x = torch.rand(3, 1, 28, 28)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    assert torch.equal(model(x), model(padded))
    assert model.features(padded).shape == (3, 128)
    torch.testing.assert_close(model.predict_proba(padded).sum(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match=r"\(B, 1, 32, 32\)"):
        model(torch.zeros(2, 3, 32, 32))


def test_shipped_classifier_files() -> None:
    names = {p.name for p in CLASSIFIER_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "README.md"} <= names
    config = json.loads((CLASSIFIER_DIR / "config.json").read_text())
    assert config == {"feature_dims": 128, "widths": [16, 32, 64]}  # the constructor arguments, nothing else
    model = load_classifier()
    assert isinstance(model, MNISTClassifier) and not model.training
    assert model.config == config


def test_shipped_classifier_accuracy(mnist_dir: Path) -> None:
    test = MNIST(mnist_dir, split="test", preprocess="diffusion", with_labels=True, download=False)
    features, probs = classify(test.images[:2000], load_classifier())
    accuracy = float((probs.argmax(dim=1) == test.labels[:2000]).double().mean())
    assert accuracy >= 0.99
    assert features.shape == (2000, 128) and bool((features >= 0).all())


def test_the_shipped_files_are_what_save_classifier_writes(tmp_path: Path) -> None:
    assert hashlib.sha256((CLASSIFIER_DIR / "model.safetensors").read_bytes()).hexdigest() == SHIPPED_WEIGHTS_SHA256
    save_classifier(load_classifier(), tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["config.json", "model.safetensors"]
    for name in ("config.json", "model.safetensors"):
        assert (tmp_path / "copy" / name).read_bytes() == (CLASSIFIER_DIR / name).read_bytes(), name


def test_save_and_load_round_trip_a_small_classifier(tmp_path: Path) -> None:
    model = MNISTClassifier(widths=(4, 8), feature_dims=8)
    init_weights(model, torch.Generator().manual_seed(0))
    model.train()(torch.rand(16, 1, 32, 32, generator=torch.Generator().manual_seed(1)))  # BatchNorm statistics move
    save_classifier(model, tmp_path / "small")
    loaded = load_classifier(tmp_path / "small")
    assert loaded.config == {"feature_dims": 8, "widths": [4, 8]} and not loaded.training
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    assert torch.equal(model.eval()(x), loaded(x))


def test_a_bad_classifier_folder_is_refused_with_the_file_named(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(CLASSIFIER_DIR, folder)
    (folder / "config.json").write_text(json.dumps({"widths": [16, 32, 64], "feature_dims": 128, "dropout": 0.1}))
    with pytest.raises(ConfigError, match=r"config.json has unknown keys \['dropout'\]"):
        load_classifier(folder)
    (folder / "config.json").write_text(json.dumps({"widths": [16, 32], "feature_dims": 128}))
    with pytest.raises(CheckpointError, match="model.safetensors"):  # the weights do not fit two blocks
        load_classifier(folder)
    (folder / "config.json").write_text(json.dumps({"widths": [16, 0], "feature_dims": 128}))
    with pytest.raises(ConfigError, match=r"widths=\[16, 0\]; expected 1 to 5 positive integers"):
        load_classifier(folder)


def test_the_classifier_is_not_a_registered_model() -> None:
    """An evaluation tool, not a generative component: pipelines cannot load it by name."""
    assert "mnist_classifier" not in registry.names("models")
