"""Sample-quality metrics: FD and KID against closed forms, class scores on hand-made
probabilities, the shipped MNIST classifier, the real-data floor and ``thermogen evaluate``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import torch

from thermogen import registry
from thermogen.cli import main
from thermogen.cli.evaluate import generate
from thermogen.data import MNIST
from thermogen.metrics import (
    CLASSIFIER_DIR,
    class_entropy,
    classify,
    confident_fraction,
    evaluate_images,
    frechet_distance,
    frechet_distance_from_features,
    kernel_inception_distance,
    load_classifier,
    real_data_floor,
)
from thermogen.metrics.kid import mmd2_unbiased, polynomial_kernel
from thermogen.models.classifier import MNISTClassifier
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.training.classifier import random_shift

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


# ----------------------------------------------------------------------------- classifier and augmentation


def test_random_shift_moves_each_image_by_its_own_offset() -> None:
    images = torch.zeros(400, 1, 32, 32)
    images[:, 0, 16, 16] = 1.0
    shifted = random_shift(images, 2, torch.Generator().manual_seed(6))
    assert torch.equal(shifted.sum(dim=(1, 2, 3)), torch.ones(400))  # the dot stays inside, unchanged
    position = shifted[:, 0].flatten(1).argmax(dim=1)
    offsets = set(zip((position // 32 - 16).tolist(), (position % 32 - 16).tolist()))
    assert offsets == set(product(range(-2, 3), repeat=2))
    again = random_shift(images, 2, torch.Generator().manual_seed(6))
    assert torch.equal(shifted, again)
    assert random_shift(images, 0) is images


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
    assert config["_class_name"] == "mnist_classifier"
    model = load_classifier()
    assert isinstance(model, MNISTClassifier) and not model.training


def test_shipped_classifier_accuracy(mnist_dir: Path) -> None:
    test = MNIST(mnist_dir, split="test", preprocess="diffusion", with_labels=True, download=False)
    features, probs = classify(test.images[:2000], load_classifier())
    accuracy = float((probs.argmax(dim=1) == test.labels[:2000]).double().mean())
    assert accuracy >= 0.99
    assert features.shape == (2000, 128) and bool((features >= 0).all())


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
        self, batch_size: int, num_inference_steps: int | None, generator: torch.Generator, output_type: str
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


def test_generate_calls_diffusion_pipelines_with_their_keywords() -> None:
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
    for call in pipeline.calls:
        assert call["num_inference_steps"] == 20 and call["output_type"] == "tensor" and call["progress"] is False
