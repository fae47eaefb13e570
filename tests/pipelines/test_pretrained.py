"""The pipelines shipped inside the package: they load offline by short name and generate deterministically."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from locations import REFERENCE
from safetensors.torch import load_file

from thermogen.cli import main
from thermogen.hub import BUNDLED_ROOT, bundled_names
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline


def test_bundled_names_are_listed() -> None:
    assert {"thermogen/ddim-mnist", "thermogen/ebm-mnist"} <= set(bundled_names())
    for name in ("ddim-mnist", "ebm-mnist"):
        card = (BUNDLED_ROOT / name / "README.md").read_text()
        assert "library_name: thermogen" in card and "thermogen train" in card


def test_ddim_mnist_loads_offline_and_is_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = Pipeline.from_pretrained("thermogen/ddim-mnist")
    assert isinstance(pipe, DiffusionPipeline) and pipe.sample_shape() == (1, 28, 28)
    pipe.progress = False
    a = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="tensor")
    b = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="tensor")
    assert torch.equal(a.images, b.images)
    assert a.images.shape == (2, 1, 28, 28) and float(a.images.min()) >= 0.0 and float(a.images.max()) <= 1.0


def test_ebm_mnist_loads_and_is_deterministic() -> None:
    pipe = Pipeline.from_pretrained("thermogen/ebm-mnist")
    assert isinstance(pipe, EBMPipeline) and pipe.buffer is not None and len(pipe.buffer) > 0
    a = pipe(
        batch_size=2,
        num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
        output_type="tensor",
        progress=False,
    )
    b = pipe(
        batch_size=2,
        num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
        output_type="tensor",
        progress=False,
    )
    assert torch.equal(a.images, b.images)


def test_ebm_mnist_draws_the_images_it_drew_before_1_0(tmp_path: Path) -> None:
    """tests/reference/ebm_mnist_images_0.1.safetensors: written by thermogen 0.1.0 (before the energy redesign)
    with ``pipe(batch_size=4, steps=40, generator=torch.Generator().manual_seed(0), output_type="tensor")``
    from the EBM bundled then (its weights: tests/reference/ebm-mnist-0.1-energy-model; the bundled EBM was
    retrained since)."""
    expected = load_file(REFERENCE / "ebm_mnist_images_0.1.safetensors")["images"]
    folder = tmp_path / "ebm-mnist-0.1-weights"
    shutil.copytree(BUNDLED_ROOT / "ebm-mnist", folder)
    shutil.copytree(REFERENCE / "ebm-mnist-0.1-energy-model", folder / "energy_model", dirs_exist_ok=True)
    pipe = Pipeline.from_pretrained(folder)
    generator = torch.Generator().manual_seed(0)
    images = pipe(batch_size=4, num_inference_steps=40, generator=generator, output_type="tensor", progress=False)
    torch.testing.assert_close(images.images, expected, rtol=0, atol=1e-5)


@pytest.fixture
def ebm_mnist_saved_before_1_0(tmp_path: Path) -> Path:
    """The bundled folder with the config files it had before 1.0: ``generation_steps`` in model_index.json,
    ``steps`` and ``form="book"`` (and the ignored ``temperature``) in the sampler's config."""
    folder = tmp_path / "ebm-mnist-0.1"
    shutil.copytree(BUNDLED_ROOT / "ebm-mnist", folder)
    shutil.copytree(REFERENCE / "ebm-mnist-0.1", folder, dirs_exist_ok=True)
    assert json.loads((folder / "model_index.json").read_text())["generation_steps"] == 1000
    assert json.loads((folder / "sampler" / "config.json").read_text())["form"] == "book"
    return folder


def test_ebm_mnist_saved_before_1_0_loads_as_today_and_draws_the_same_images(ebm_mnist_saved_before_1_0: Path) -> None:
    today = Pipeline.from_pretrained("thermogen/ebm-mnist", num_inference_steps=1000)  # the old files' chain length
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # renamed keys are read silently: nothing is lost or changed
        loaded = [
            Pipeline.from_pretrained(ebm_mnist_saved_before_1_0),
            EBMPipeline.from_pretrained(ebm_mnist_saved_before_1_0),
        ]
    for old in loaded:
        assert isinstance(old, EBMPipeline) and old.num_inference_steps == 1000
        assert old.to_config() == today.to_config() and old.sampler.to_config() == today.sampler.to_config()
        calls = [
            pipe(
                batch_size=2,
                num_inference_steps=5,
                generator=torch.Generator().manual_seed(3),
                output_type="tensor",
                progress=False,
            )
            for pipe in (old, today)
        ]
        assert torch.equal(calls[0].images, calls[1].images)


def test_a_setting_given_at_load_wins_over_the_old_key(ebm_mnist_saved_before_1_0: Path) -> None:
    assert EBMPipeline.from_pretrained(ebm_mnist_saved_before_1_0, num_inference_steps=50).num_inference_steps == 50


def test_ebm_mnist_scores_out_of_distribution_images_worse(mnist_dir: Path) -> None:
    """Lippe's check: uniform noise and flipped digits get higher energy than real test digits.

    (Digits shrunk to half size do *not* score worse with the bundled model after 2,400 steps:
    mean energy -0.006 against 0.017 for real digits; docs/results.md reports it.)
    """
    from thermogen.data import MNIST

    pipe = Pipeline.from_pretrained("thermogen/ebm-mnist")
    real = MNIST(mnist_dir, split="test", preprocess="diffusion").images[:256]  # [0, 1], padded to 32
    noise = torch.rand(real.shape, generator=torch.Generator().manual_seed(0))
    flipped = real.flip(-1).flip(-2)
    shrunk = torch.nn.functional.pad(torch.nn.functional.interpolate(real, scale_factor=0.5, mode="bilinear"), (8,) * 4)
    energy = {
        name: float(pipe.energy(x).mean())
        for name, x in {"real": real, "noise": noise, "flipped": flipped, "shrunk": shrunk}.items()
    }
    assert energy["real"] < min(energy["noise"], energy["flipped"]), energy


def test_sample_command_writes_a_grid(tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert main(["sample", "--n", "4", "--steps", "2", "--out", str(out), "--no-progress"]) == 0
    from PIL import Image

    with Image.open(out) as image:
        assert image.size[0] > 64


def test_figure_commands_write_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    commands = {
        "interp.png": ["interpolate", "--rows", "2", "--num", "3", "--steps", "2"],
        "sweep.png": ["steps-sweep", "--steps", "1,2", "--n", "3"],
        "strip.png": ["langevin-strip", "--n", "2", "--steps", "4", "--snapshots", "0,1,3"],
    }
    for name, command in commands.items():
        assert main([*command, "--out", str(tmp_path / name)]) == 0
    with Image.open(tmp_path / "interp.png") as image:  # 3 frames per row, 2 rows, 28 px each, scaled x2
        assert image.size == ((3 * 30 + 2) * 2, (2 * 30 + 2) * 2)
    with Image.open(tmp_path / "strip.png") as image:
        assert image.size == ((3 * 34 + 2) * 2, (2 * 34 + 2) * 2)
    assert "rows: 1, 2 steps" in capsys.readouterr().out


def quality(images: torch.Tensor) -> dict[str, float]:
    """What the bundled MNIST classifier makes of ``images`` (N, 1, 32, 32) in [0, 1]."""
    from thermogen.mnist import class_entropy, classify, confident_fraction, load_classifier

    _, probs = classify(images, load_classifier())
    return {
        "mean_confidence": float(probs.max(dim=1).values.mean()),
        "confident_fraction": confident_fraction(probs),
        "classes": float(len(set(probs.argmax(dim=1).tolist()))),
        "class_entropy": class_entropy(probs),
    }


def passes_quality_floor(scores: dict[str, float]) -> bool:
    """A floor any decent MNIST generator clears and random weights do not, on 40 images.

    Digits the classifier recognises (mean top probability >= 0.75, >= 40 % of images at >= 0.9)
    and of many kinds (>= 6 of the 10 classes, class entropy >= 1.4 nats of ln 10 = 2.30).
    Measured: ddim-mnist (20 steps) 0.89 / 70 % / 8 / 1.70, ebm-mnist (1,000 steps) 0.91 / 78 % / 9 / 1.91;
    random weights of the same networks 0.63 / 10 % / 4 / 1.21 (U-Net) and one saturated class (EBM).
    """
    return (
        scores["mean_confidence"] >= 0.75
        and scores["confident_fraction"] >= 0.4
        and scores["classes"] >= 6
        and scores["class_entropy"] >= 1.4
    )


def test_bundled_ddim_mnist_passes_the_quality_floor() -> None:
    pipe = Pipeline.from_pretrained("thermogen/ddim-mnist")
    pipe.progress = False
    images = pipe(batch_size=40, generator=torch.Generator().manual_seed(0), output_type="tensor").images
    scores = quality(images)
    assert passes_quality_floor(scores), scores


def test_bundled_ebm_mnist_passes_the_quality_floor_from_uniform_noise() -> None:
    pipe = Pipeline.from_pretrained("thermogen/ebm-mnist")  # its own num_inference_steps, from U(-1, 1) noise
    images = pipe(
        batch_size=40, generator=torch.Generator().manual_seed(0), output_type="tensor", progress=False
    ).images
    scores = quality(images)
    assert passes_quality_floor(scores), scores


def test_the_quality_floor_rejects_noise_blank_images_and_one_repeated_digit() -> None:
    """The test of the test: images that are not a generator of digits fail the floor."""
    generator = torch.Generator().manual_seed(0)
    assert not passes_quality_floor(quality(torch.rand(40, 1, 32, 32, generator=generator)))
    assert not passes_quality_floor(quality(torch.zeros(40, 1, 32, 32)))
    pipe = Pipeline.from_pretrained("thermogen/ddim-mnist")
    pipe.progress = False
    one = pipe(batch_size=1, generator=generator, output_type="tensor").images
    assert not passes_quality_floor(quality(one.expand(40, -1, -1, -1)))  # confident, but one class


def test_the_bundled_pipelines_stay_small() -> None:
    """The package ships both pipelines in under 15 MB, 15,000,000 bytes (the EBM buffer is stored as uint8,
    the networks' weights as float16)."""
    size = sum(path.stat().st_size for name in ("ddim-mnist", "ebm-mnist") for path in (BUNDLED_ROOT / name).rglob("*"))
    assert size < 15_000_000, f"bundled pipelines take {size:,} bytes"
    buffer = Pipeline.from_pretrained("thermogen/ebm-mnist").buffer
    assert buffer is not None and buffer.storage.dtype == torch.uint8 and len(buffer) == buffer.capacity
