"""The MNIST scores: class scores on hand-made probabilities, the real-data floor, and ``thermogen evaluate``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from thermogen import registry
from thermogen.cli import main
from thermogen.cli.evaluate import generate
from thermogen.data import MNIST
from thermogen.mnist import class_counts, class_entropy, confident_fraction, evaluate_images, real_data_floor
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline

# ----------------------------------------------------------------------------- class scores


def test_confident_fraction_on_hand_made_probabilities() -> None:
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.01, 0.99]])
    assert confident_fraction(probs) == pytest.approx(3 / 5)  # 0.95, 0.9 (inclusive), 0.99
    assert confident_fraction(probs, threshold=0.5) == 1.0
    assert confident_fraction(probs, threshold=0.999) == 0.0


def test_class_entropy_of_histograms() -> None:
    uniform = torch.eye(10).repeat(3, 1)  # three confident rows per class
    assert class_entropy(uniform) == pytest.approx(math.log(10))
    assert class_entropy(uniform * 0.5 + 0.05) == pytest.approx(math.log(10))  # only the arg-max counts
    one_class = torch.zeros(20, 10)
    one_class[:, 7] = 1.0
    assert class_entropy(one_class) == 0.0
    two = torch.eye(10)[[1, 1, 4, 4]]
    assert class_entropy(two) == pytest.approx(math.log(2))


def test_class_counts_are_the_histogram_of_arg_max_classes() -> None:
    probs = torch.eye(10)[[3, 3, 3, 0, 9]] * 0.5 + 0.05  # only the arg-max counts
    assert class_counts(probs) == [1, 0, 0, 3, 0, 0, 0, 0, 0, 1]
    assert sum(class_counts(torch.rand(50, 10, generator=torch.Generator().manual_seed(0)))) == 50
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        class_counts(torch.rand(10))


# ----------------------------------------------------------------------------- evaluation on real data


def test_real_data_floor_is_small_and_a_collapsed_set_is_not(mnist_dir: Path) -> None:
    floor = real_data_floor(1000, mnist_dir)
    assert floor["n"] == 1000
    assert abs(floor["kid_mean"]) < 3 * floor["kid_std"] + 1e-3
    assert floor["confident_fraction"] > 0.95
    assert floor["class_entropy"] > 2.25  # ln 10 = 2.303: all digits about equally often

    # 1000 real test images of the digit 1 only: legible, but no diversity
    test = MNIST(mnist_dir, split="test", preprocess="diffusion", download=False)
    ones = test.images[test.labels == 1][:1000]
    collapsed = evaluate_images(ones, data_dir=mnist_dir)
    assert collapsed["class_entropy"] < 0.1
    assert collapsed["confident_fraction"] > 0.95
    assert collapsed["fd"] > 20 * floor["fd"]
    assert collapsed["kid_mean"] > 20 * (abs(floor["kid_mean"]) + floor["kid_std"])

    # noise images are neither
    noise = torch.rand(500, 1, 32, 32, generator=torch.Generator().manual_seed(7))
    assert evaluate_images(noise, data_dir=mnist_dir)["fd"] > 20 * floor["fd"]


def test_evaluate_images_rejects_images_outside_unit_range() -> None:
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        evaluate_images(torch.full((4, 1, 32, 32), -1.0), reference=torch.zeros(10, 128))


# ----------------------------------------------------------------------------- the CLI


class RealMNISTPipeline(Pipeline):
    """A stand-in "generator" that returns random real MNIST training images (EBM-style call)."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.images: torch.Tensor | None = None

    def __call__(
        self,
        batch_size: int,
        num_inference_steps: int | None,
        generator: torch.Generator,
        output_type: str,
        progress: bool = False,
    ) -> Any:
        assert num_inference_steps is None and output_type == "tensor"
        if self.images is None:
            self.images = MNIST(self.data_dir, split="train", preprocess="diffusion", download=False).images
        index = torch.randint(0, len(self.images), (batch_size,), generator=generator)
        return _Output(self.images[index])


@dataclass
class _Output:
    images: torch.Tensor


@pytest.fixture
def real_pipeline_dir(tmp_path: Path, mnist_dir: Path) -> Iterator[Path]:
    registry.register("pipelines", "test_real_mnist")(RealMNISTPipeline)
    try:
        RealMNISTPipeline(str(mnist_dir)).save_pretrained(tmp_path / "real")
        yield tmp_path / "real"
    finally:
        registry.unregister("pipelines", "test_real_mnist")


def test_evaluate_cli_on_real_images_matches_the_floor(
    real_pipeline_dir: Path, mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "metrics.json"
    args = ["evaluate", str(real_pipeline_dir), "--n", "600", "--batch-size", "250", "--seed", "1"]
    assert main([*args, "--data-dir", str(mnist_dir), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    table = [[cell.strip() for cell in line.split("|")] for line in printed.splitlines() if "|" in line]
    assert table[0] == ["metric", "samples", "real-data floor", "ratio"]
    assert [row[0] for row in table[1:]] == ["FD", "KID", "confident_fraction", "class_entropy"]
    result = json.loads(out.read_text())
    samples, floor = result["samples"], result["real_data_floor"]
    assert samples["n"] == floor["n"] == 600
    assert fd_window(samples["fd"] / floor["fd"])
    assert abs(samples["kid_mean"]) < 3 * samples["kid_std"] + 1e-3
    assert samples["confident_fraction"] == pytest.approx(floor["confident_fraction"], abs=0.03)
    assert samples["class_entropy"] == pytest.approx(floor["class_entropy"], abs=0.05)


def fd_window(fd_ratio: float) -> bool:
    """The CLI test's acceptance window for FD(samples) / FD(real-data floor) at n = 600.

    Real training images score 0.9-1.7 depending on the draw (the floor is itself a
    600-sample estimate); the window must reject digits dimmed to 80 % (about 10)
    and digits shifted by one pixel (2.2-3.0).
    """
    return 0.5 < fd_ratio < 2.0


def test_the_fd_window_accepts_real_images_and_rejects_near_misses(mnist_dir: Path) -> None:
    floor = real_data_floor(600, mnist_dir)
    train = MNIST(mnist_dir, split="train", preprocess="diffusion", download=False).images
    real = train[torch.randint(0, len(train), (600,), generator=torch.Generator().manual_seed(3))]
    ratio = {
        name: evaluate_images(images, data_dir=mnist_dir)["fd"] / floor["fd"]
        for name, images in {"real": real, "dimmed": real * 0.8, "shifted": real.roll(1, dims=-1)}.items()
    }
    assert fd_window(ratio["real"]), ratio
    assert not fd_window(ratio["dimmed"]) and not fd_window(ratio["shifted"]), ratio


def test_generate_calls_every_pipeline_with_the_one_calling_convention() -> None:
    class FakeDiffusion(DiffusionPipeline):
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def __call__(self, **kwargs: Any) -> Any:  # type: ignore[override]
            self.calls.append(kwargs)
            return _Output(torch.zeros(kwargs["batch_size"], 1, 32, 32))

    pipeline = FakeDiffusion()
    images = generate(pipeline, 7, 3, None, torch.Generator())
    assert images.shape == (7, 1, 32, 32)
    assert [c["batch_size"] for c in pipeline.calls] == [3, 3, 1]
    for call in pipeline.calls:  # None: the pipeline's own default number of steps
        assert call["num_inference_steps"] is None and call["output_type"] == "tensor" and call["progress"] is False
    generate(pipeline, 2, 2, 5, torch.Generator())
    assert pipeline.calls[-1]["num_inference_steps"] == 5


def test_feature_embedding_is_the_classifiers_features_of_the_denormalised_images() -> None:
    from thermogen.mnist import feature_embedding, load_classifier
    from thermogen.normalizer import Normalizer

    classifier = load_classifier()
    normalizer = Normalizer([0.13], [0.31])
    x0 = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(4)) * 2  # some pixels beyond [0, 1]
    expected = classifier.features((x0 * 0.31 + 0.13).clamp(0.0, 1.0))
    torch.testing.assert_close(feature_embedding(normalizer, classifier)(x0), expected)
    assert feature_embedding(normalizer)(x0).shape == (5, 128)  # the bundled classifier by default
