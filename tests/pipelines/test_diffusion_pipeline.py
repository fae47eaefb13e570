"""DiffusionPipeline: save/load round trip, determinism, interpolation, sampler swaps, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from statistical_rules import unit_variance_mismatches

from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline, interpolate_noise
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule


def make_pipeline(channels: int = 1, size: int = 8) -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(channels, size, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    pipe = DiffusionPipeline(
        model, OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer([0.2] * channels, [0.3] * channels)
    )
    pipe.progress = False
    return pipe


def generate(pipe: DiffusionPipeline, seed: int = 0, **kwargs: object) -> torch.Tensor:
    return pipe(
        batch_size=3,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(seed),
        output_type="tensor",
        **kwargs,
    ).images


def test_save_load_round_trip_gives_the_same_images(tmp_path: Path) -> None:
    pipe = make_pipeline()
    before = generate(pipe)
    pipe.save_pretrained(tmp_path / "pipe")
    names = sorted(p.name for p in (tmp_path / "pipe").iterdir())
    assert names == ["README.md", "model", "model_index.json", "normalizer", "sampler", "schedule"]
    assert "library_name: thermogen" in (tmp_path / "pipe" / "README.md").read_text()
    loaded = Pipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded, DiffusionPipeline)
    loaded.progress = False
    assert torch.equal(generate(loaded), before)


def test_same_seed_same_images_and_output_range() -> None:
    pipe = make_pipeline()
    a, b, c = generate(pipe, 1), generate(pipe, 1), generate(pipe, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 1, 8, 8) and a.min() >= 0 and a.max() <= 1


def test_book_ddim_returns_the_last_x0_estimate() -> None:
    pipe = make_pipeline()
    seen, estimates = [], []

    def record(info) -> None:  # type: ignore[no-untyped-def]
        seen.append(float(info.t))
        estimates.append((info.sample.clone(), info.pred_original_sample.clone()))

    images = pipe(
        batch_size=2,
        num_inference_steps=5,
        generator=torch.Generator().manual_seed(0),
        callback=record,
        output_type="tensor",
    ).images
    assert seen == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0])
    last_x, last_x0 = estimates[-1]
    assert torch.allclose(images, (last_x0 * 0.3 + 0.2).clamp(0, 1))  # the last x0 estimate, denormalised ...
    assert not torch.allclose(images, (last_x * 0.3 + 0.2).clamp(0, 1), atol=1e-2)  # ... not the last x


def test_output_types() -> None:
    pipe = make_pipeline(channels=3)
    pil = pipe(batch_size=2, num_inference_steps=2, output_type="pil").images
    assert len(pil) == 2 and pil[0].size == (8, 8) and pil[0].mode == "RGB"
    array = pipe(batch_size=2, num_inference_steps=2, output_type="numpy").images
    assert isinstance(array, np.ndarray) and array.shape == (2, 8, 8, 3)
    with pytest.raises(ValueError, match="output_type='jpeg'"):
        pipe(batch_size=1, num_inference_steps=1, output_type="jpeg")  # type: ignore[arg-type]


def test_swap_sampler_by_name_on_load(tmp_path: Path) -> None:
    make_pipeline().save_pretrained(tmp_path / "pipe")
    swapped = Pipeline.from_pretrained(tmp_path / "pipe", sampler="dpmpp_2m")
    assert type(swapped.sampler).__name__ == "DPMSolverPP2M"
    swapped.progress = False
    assert generate(swapped).shape == (3, 1, 8, 8)
    with pytest.raises(LookupError, match="unknown sampler 'nope'"):
        Pipeline.from_pretrained(tmp_path / "pipe", sampler="nope")


def test_eta_overrides_the_sampler_for_one_call() -> None:
    pipe = make_pipeline()
    deterministic = generate(pipe, 0)
    stochastic_a = generate(pipe, 0, eta=1.0)
    stochastic_b = generate(pipe, 5, eta=1.0)
    assert not torch.equal(deterministic, stochastic_a)
    assert pipe.sampler.config["eta"] == 0.0
    assert not torch.equal(stochastic_a, stochastic_b)


def test_initial_state_and_interpolation_endpoints() -> None:
    pipe = make_pipeline()
    generator = torch.Generator().manual_seed(3)
    a, b = pipe.make_noise(1, generator)[0], pipe.make_noise(1, generator)[0]
    for method in ("book", "slerp"):
        noises = interpolate_noise(a, b, 11, method)
        assert noises.shape == (11, 1, 8, 8)
        assert torch.allclose(noises[0], b, atol=1e-6) and torch.allclose(noises[-1], a, atol=1e-6)
    frames = pipe.interpolate(a, b, num=5, num_inference_steps=3).images
    assert frames.shape == (5, 1, 8, 8)
    assert torch.allclose(frames[0], pipe(initial_state=b[None], num_inference_steps=3, output_type="tensor").images[0])
    assert torch.allclose(
        frames[-1], pipe(initial_state=a[None], num_inference_steps=3, output_type="tensor").images[0]
    )


def test_book_interpolation_preserves_variance() -> None:
    """Frames of two N(0, 1) noises keep variance 1: the rule rejects variance x1.2, x0.8, x1.1 and x0.9
    and linear interpolation at this size (tests/testing/test_statistical_power.py); the weights are sin and cos."""
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, 64, generator=generator), torch.randn(4, 64, 64, generator=generator)
    noises = interpolate_noise(a, b, 11, "book")
    problems = unit_variance_mismatches(noises)
    assert not problems, problems
    theta = torch.linspace(0, torch.pi / 2, 11).view(11, 1, 1, 1)
    torch.testing.assert_close(noises, torch.sin(theta) * a + torch.cos(theta) * b, rtol=0, atol=1e-6)


def test_steps_sweep_uses_the_same_noise() -> None:
    sweep = make_pipeline().steps_sweep(steps=(1, 2, 50), batch_size=2, seed=42)
    assert sorted(sweep) == [1, 2, 50] and all(v.shape == (2, 1, 8, 8) for v in sweep.values())
    again = make_pipeline().steps_sweep(steps=(2,), batch_size=2, seed=42)
    assert torch.equal(again[2], sweep[2])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size=0; expected a positive integer"),
        ({"num_inference_steps": -1}, "num_inference_steps=-1; expected a positive integer"),
        (
            {"initial_state": torch.randn(2, 3, 8, 8)},
            r"initial_state has shape \(2, 3, 8, 8\); expected \(B, 1, 8, 8\)",
        ),
        ({"initial_state": torch.randn(2, 1, 16, 16)}, r"expected \(B, 1, 8, 8\)"),
        ({"eta": 0.5, "_sampler": "dpmpp_2m"}, "has no eta"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict, message: str) -> None:
    pipe = make_pipeline()
    if "_sampler" in kwargs:
        from thermogen import registry

        pipe.sampler = registry.get("samplers", kwargs.pop("_sampler"))()
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def test_model_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match=r"noisy has shape \(1, 3, 8, 8\); expected \(B, 1, H, W\)"):
        make_pipeline().model(torch.randn(1, 3, 8, 8), torch.ones(1))


def test_to_dtype_float64() -> None:
    pipe = make_pipeline().to(dtype=torch.float64)
    assert pipe.dtype == torch.float64
    images = generate(pipe)
    assert torch.isfinite(images).all()


def test_unet_book_default_parameter_count() -> None:
    assert sum(p.numel() for p in UNet(3, 64).parameters()) == 1_950_627
    model = UNet(1, 32)
    out = model(torch.randn(2, 1, 32, 32), torch.tensor([0.1, 0.9]))
    assert out.shape == (2, 1, 32, 32) and torch.count_nonzero(out) == 0  # zero-initialised head
