"""Independent oracles for the layers above the samplers: pipelines, save/load, overrides, CLI, model cards.

Each test compares the library against a hand-written computation or a closed
form, so a fault in the glue (which tensor a pipeline returns, which config a
save writes) changes a number the test checks.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from thermogen.cli import main
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline, interpolate_noise
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.unipc import UniPCSampler
from thermogen.schedules.cosine import OffsetCosineSchedule

MEAN, STD = 0.2, 0.3  # a normalizer far from the identity, so forgetting the mean or the std shows


def small_pipeline(sampler: DDIMSampler | None = None) -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    pipe = DiffusionPipeline(
        model, OffsetCosineSchedule(), sampler or DDIMSampler(spacing="uniform"), Normalizer([MEAN], [STD])
    )
    pipe.progress = False
    return pipe


def hand_written_ddim(pipe: DiffusionPipeline, steps: int, seed: int, eta: float = 0.0) -> tuple[torch.Tensor, list]:
    """The book's reverse_diffusion with DDIM's eq. 12 written out; returns (last x0, every x)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((3, 1, 8, 8), generator=generator)
    xs = [x]
    x0 = x
    for i in range(steps):
        t, t_prev = 1.0 - i / steps, 1.0 - (i + 1) / steps
        angle = math.acos(0.95) + t * (math.acos(0.02) - math.acos(0.95))
        angle_prev = math.acos(0.95) + t_prev * (math.acos(0.02) - math.acos(0.95))
        a, s, a_prev, s_prev = math.cos(angle), math.sin(angle), math.cos(angle_prev), math.sin(angle_prev)
        with torch.no_grad():
            eps = pipe.model(x, torch.full((3,), s))
        x0 = (x - s * eps) / a
        sigma = eta * (s_prev / s) * math.sqrt(1.0 - (a / a_prev) ** 2)
        x = a_prev * x0 + math.sqrt(s_prev**2 - sigma**2) * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator)
        xs.append(x)
    return x0, xs


@pytest.mark.parametrize("eta", [0.0, 0.6])
def test_pipeline_images_are_the_hand_written_loops_last_x0_denormalised(eta: float) -> None:
    pipe = small_pipeline()
    x0, xs = hand_written_ddim(pipe, steps=4, seed=7, eta=eta)
    expected = (x0 * STD + MEAN).clamp(0.0, 1.0)
    out = pipe(
        batch_size=3,
        num_inference_steps=4,
        generator=torch.Generator().manual_seed(7),
        eta=eta if eta else None,
        output_type="tensor",
        return_trajectory=True,
    )
    assert torch.allclose(out.images, expected, atol=1e-5)
    # return_trajectory: x_T and the sample after each step, in model space
    assert out.trajectory is not None and out.trajectory.shape == (5, 3, 1, 8, 8)
    assert torch.allclose(out.trajectory, torch.stack(xs), atol=1e-5)
    # the last x differs from the last x0 estimate by far more than the tolerance (so the test tells them apart)
    assert float((xs[-1] * STD + MEAN).clamp(0, 1).sub(expected).abs().max()) > 1e-2


def test_slerp_frames_are_on_the_great_circle_at_even_angles() -> None:
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 8, 8, generator=generator), torch.randn(1, 8, 8, generator=generator)
    b = b * (a.norm() / b.norm())  # equal norms: slerp frames are then evenly spaced in angle
    frames = interpolate_noise(a, b, 5, "slerp").double()
    a64, b64 = a.double().flatten(), b.double().flatten()
    omega = math.acos(float(a64 @ b64 / (a64.norm() * b64.norm())))
    for k, frame in enumerate(frames):
        f = frame.flatten()
        angle_to_b = math.acos(min(1.0, float(f @ b64 / (f.norm() * b64.norm()))))
        assert angle_to_b == pytest.approx(k / 4 * omega, abs=1e-5)
    # the closed form, for unequal norms too: sin((1-f)ω)/sin ω b + sin(fω)/sin ω a at f = 1/4
    b64 = 2.0 * b64
    frames = interpolate_noise(a, (2.0 * b).float(), 5, "slerp").double()
    quarter = (math.sin(0.75 * omega) * b64 + math.sin(0.25 * omega) * a64) / math.sin(omega)
    assert torch.allclose(frames[1].flatten(), quarter, atol=1e-5)


def test_normalizer_fit_and_round_trip_against_closed_forms() -> None:
    # channel 0: half 0s, half 1s (mean 0.5, std 0.5); channel 1: constant 0.8 plus ±0.1 (mean 0.8, std 0.1)
    images = torch.zeros(4, 2, 2, 2)
    images[:2, 0] = 1.0
    images[:, 1] = 0.8 + 0.1 * torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    fitted = Normalizer.fit(images)
    assert fitted.mean == pytest.approx([0.5, 0.8]) and fitted.std == pytest.approx([0.5, 0.1])
    normal = Normalizer([0.25, -1.0], [2.0, 0.5])
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    assert torch.allclose(normal.denormalize(normal.normalize(x)), x)
    assert torch.allclose(normal.normalize(x)[:, 1], (x[:, 1] + 1.0) / 0.5)
    assert torch.allclose(
        normal.denormalize(torch.zeros(1, 2, 1, 1, dtype=torch.float64)).flatten(),
        torch.tensor([0.25, -1.0], dtype=torch.float64),
    )


def non_default_pipeline() -> DiffusionPipeline:
    torch.manual_seed(3)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=6)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    sampler = DDIMSampler(eta=0.3, spacing="trailing", clip_sample=1.5)
    schedule = OffsetCosineSchedule(max_signal_rate=0.9, min_signal_rate=0.05)
    pipe = DiffusionPipeline(model, schedule, sampler, Normalizer([0.1], [0.7]))
    pipe.progress = False
    return pipe


def test_save_load_keeps_every_non_default_config_and_tensor(tmp_path: Path) -> None:
    pipe = non_default_pipeline()
    for name, component in pipe.components.items():  # every component differs from its defaults
        assert component.to_config() != type(component)().to_config() if name != "model" else True
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = Pipeline.from_pretrained(tmp_path / "pipe")
    for name, component in pipe.components.items():
        assert loaded.components[name].to_config() == component.to_config(), name
    original, restored = pipe.model.state_dict(), loaded.model.state_dict()
    assert original.keys() == restored.keys() and all(torch.equal(original[k], restored[k]) for k in original)
    loaded.progress = False
    run = {"batch_size": 2, "num_inference_steps": 3, "output_type": "tensor"}
    assert torch.equal(
        pipe(generator=torch.Generator().manual_seed(0), **run).images,
        loaded(generator=torch.Generator().manual_seed(0), **run).images,
    )


def test_overrides_as_name_mapping_and_object(tmp_path: Path) -> None:
    non_default_pipeline().save_pretrained(tmp_path / "pipe")
    # a swap by config or by name keeps the options the saved DDIM shares with Euler, and names the one it drops
    with pytest.warns(UserWarning, match=r"sampler 'ddim' -> 'euler': kept .*'spacing'.*; dropped clip_sample=1\.5"):
        by_mapping = Pipeline.from_pretrained(tmp_path / "pipe", sampler={"_class_name": "euler", "eta": 0.4})
    assert isinstance(by_mapping.sampler, EulerSampler)
    assert by_mapping.sampler.config == {**EulerSampler().config, "eta": 0.4, "spacing": "trailing"}
    with pytest.warns(UserWarning, match="dropped clip_sample=1.5"):
        by_name = Pipeline.from_pretrained(tmp_path / "pipe", sampler="euler")
    assert by_name.sampler.config == {**EulerSampler().config, "eta": 0.3, "spacing": "trailing"}
    sampler = EulerSampler(eta=0.7, spacing="uniform")
    by_object = Pipeline.from_pretrained(tmp_path / "pipe", sampler=sampler)
    assert by_object.sampler is sampler
    # the other components still come from disk
    assert by_object.schedule.config == {"max_signal_rate": 0.9, "min_signal_rate": 0.05}


def test_a_swap_from_a_saved_unipc_warns_about_nothing_left_at_its_default(tmp_path: Path) -> None:
    """UniPC's ``disable_corrector=()`` is saved as the JSON list ``[]``: its default, so dropping it is silent."""
    pipe = non_default_pipeline()
    pipe.sampler = UniPCSampler(spacing="karras")
    pipe.save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "sampler" / "config.json").read_text())["disable_corrector"] == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        swapped = Pipeline.from_pretrained(tmp_path / "pipe", sampler="dpmpp_2m")
    assert swapped.sampler.config["spacing"] == "karras"
    pipe.sampler = UniPCSampler(spacing="karras", disable_corrector=(1,))
    pipe.save_pretrained(tmp_path / "changed")
    with pytest.warns(UserWarning, match=r"dropped disable_corrector=\[1\]"):
        Pipeline.from_pretrained(tmp_path / "changed", sampler="dpmpp_2m")


def test_model_card_names_the_library_and_every_component(tmp_path: Path) -> None:
    pipe = non_default_pipeline()
    pipe.save_pretrained(tmp_path / "pipe")
    card = (tmp_path / "pipe" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: thermogen\ntags:\n- thermogen\n- diffusion\n---")
    for row in (
        "| model | `unet` |",
        "| schedule | `offset_cosine` |",
        "| sampler | `ddim` |",
        "| normalizer | `normalizer` |",
    ):
        assert row in card
    assert 'Pipeline.from_pretrained("<this repo or folder>")' in card
    assert Pipeline.from_pretrained(tmp_path / "pipe").model_card == card


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_pipelines_follow_float32(dtype: torch.dtype) -> None:
    reference = small_pipeline()
    noise = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    expected = reference(initial_state=noise, num_inference_steps=4, output_type="tensor", return_trajectory=True)
    low = small_pipeline().to(dtype=dtype)
    assert low.dtype == dtype and low.make_noise(1).dtype == dtype
    out = low(initial_state=noise, num_inference_steps=4, output_type="tensor", return_trajectory=True)
    assert out.images.dtype == dtype and torch.isfinite(out.images).all()  # "tensor" images come in the pipeline dtype
    assert out.trajectory is not None and out.trajectory.dtype == dtype
    # every step's sample within 5 % (relative norm) of float32's; measured: 2 % for both dtypes
    error = (out.trajectory.float() - expected.trajectory).flatten(2).norm(dim=2)
    assert float((error / expected.trajectory.flatten(2).norm(dim=2)).max()) < 0.05
    assert float((out.images.float() - expected.images).abs().mean()) < 0.02


@pytest.mark.parametrize("sampler_name", ["mala", "hmc"])
def test_ebm_pipeline_with_metropolis_samplers_draws_the_target(sampler_name: str) -> None:
    """Target N(0, 0.25² I) in [-1, 1]^16: the images (x + 1) / 2 have mean 0.5 and std 0.125."""
    from thermogen import registry
    from thermogen.testing import GaussianMixture
    from thermogen.testing.gaussian_mixture import GaussianMixtureEnergy

    energy = GaussianMixtureEnergy(GaussianMixture(torch.zeros(1, 16), [0.25]), sample_shape=(1, 4, 4))
    kwargs = {"step_size": 0.02} if sampler_name == "mala" else {"step_size": 0.1, "num_leapfrog_steps": 4}
    sampler = registry.get("samplers", sampler_name)(num_steps=150, **kwargs)
    pipe = EBMPipeline(energy, sampler)
    out = pipe(batch_size=500, generator=torch.Generator().manual_seed(0), output_type="tensor", progress=False)
    images = out.images.double()
    assert images.shape == (500, 1, 4, 4)
    assert out.acceptance_rate is not None and 0.3 < out.acceptance_rate <= 1.0
    assert draws_the_target(images), (float(images.mean()), float(images.std()))


def draws_the_target(images: torch.Tensor) -> bool:
    """Mean 0.5 and std 0.125 of 8,000 image values (standard errors 0.0014 and 0.001 for exact draws)."""
    return abs(float(images.mean()) - 0.5) < 0.01 and abs(float(images.std()) - 0.125) < 0.008


def test_the_ebm_target_check_rejects_near_misses() -> None:
    """Exact draws pass; std x1.1 (what unadjusted Langevin at a too large step gives) and a mean
    off by 0.02 fail."""
    generator = torch.Generator().manual_seed(0)

    def draw(mean: float, std: float) -> torch.Tensor:
        return mean + std * torch.randn(500, 1, 4, 4, generator=generator, dtype=torch.float64)

    assert all(draws_the_target(draw(0.5, 0.125)) for _ in range(5))
    assert not any(draws_the_target(draw(0.5, 0.1375)) for _ in range(5))
    assert not any(draws_the_target(draw(0.52, 0.125)) for _ in range(5))


# ---- the command line ------------------------------------------------------------------------------


def test_thermogen_list_names_every_registered_component(capsys: pytest.CaptureFixture[str]) -> None:
    from thermogen import registry

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in registry.KINDS:
        assert f"{kind}:" in out
        for name in registry.names(kind):
            assert f"  {name} " in out or out.rstrip().endswith(f"  {name}"), (kind, name)
    assert "bundled pretrained pipelines:\n" in out and "thermogen/ddim-mnist" in out
    assert main(["list", "samplers"]) == 0
    only = capsys.readouterr().out
    assert only.startswith("samplers:\n") and "schedules:" not in only and "bundled" not in only


def test_thermogen_schedules_prints_the_end_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedules", "offset_cosine", "cosine"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # offset_cosine: signal rate 0.95 at t = 0 and 0.02 at t = 1 (the book's values); cosine: cos(0) and cos(π/2)
    assert lines == [
        "offset_cosine      signal_rate(0)=0.9500 signal_rate(1)=0.0200",
        "cosine             signal_rate(0)=1.0000 signal_rate(1)=0.0000",
    ]


def test_python_dash_m_thermogen_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "thermogen", "schedules", "linear"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("linear ") and "signal_rate(0)=1.0000" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "thermogen", "no-such-command"], capture_output=True, timeout=120)
    assert bad.returncode == 2


# ---- image conversions: exact pixel values ------------------------------------------------------------


def test_pil_output_and_png_files_round_to_the_nearest_8_bit_value(tmp_path: Path) -> None:
    from PIL import Image

    from thermogen.pipelines.images import save_image, to_output

    values = torch.tensor([0.0, 0.001, 0.2, 0.4999, 0.999, 1.0, 1.5, -0.5])  # the last two are clipped
    image = values.reshape(1, 1, 2, 4)
    expected = [0, 0, 51, 127, 255, 255, 255, 0]  # round(255 v): 0.255 -> 0, 51.0, 127.47 -> 127, 254.7 -> 255
    (pil,) = to_output(image.clamp(0, 1), "pil")
    assert np.asarray(pil).flatten().tolist() == expected
    save_image(image[0], tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as png:
        assert np.asarray(png).flatten().tolist() == expected


def test_ebm_pipeline_maps_unit_images_to_minus_one_one() -> None:
    from thermogen.pixels import to_signed_range, to_unit_range
    from thermogen.samplers.energy.sgld import SGLDSampler
    from thermogen.testing import GaussianMixture
    from thermogen.testing.gaussian_mixture import GaussianMixtureEnergy

    images = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(to_signed_range(torch.tensor([0.0, 0.5, 1.0])), torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(to_unit_range(to_signed_range(images)).double(), images, atol=1e-7)
    energy = GaussianMixtureEnergy(GaussianMixture(torch.zeros(1, 16), [0.5]), sample_shape=(1, 4, 4)).double()
    pipe = EBMPipeline(energy, SGLDSampler(num_steps=1))
    # E of an image in [0, 1] is E of 2 x - 1: for N(0, 0.25 I), |2x - 1|^2 / 0.5 plus the normaliser
    expected = energy(images * 2 - 1).float()
    assert torch.allclose(pipe.energy(images), expected)
    log_norm = 8 * math.log(2 * math.pi * 0.25)
    assert torch.allclose(pipe.energy(torch.full((1, 1, 4, 4), 0.5, dtype=torch.float64)), torch.tensor([log_norm]))
