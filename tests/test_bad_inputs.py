"""Bad inputs end in clear errors: each test feeds one attack and asserts the error that names it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from thermogen import checks, registry
from thermogen.buffers import ReplayBuffer
from thermogen.config import Configurable
from thermogen.config_files import read_config
from thermogen.errors import CheckpointError, ConfigError
from thermogen.interfaces import NoisePredictor
from thermogen.models.ddpm_unet import DDPMUNet
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines import DiffusionPipeline, EBMPipeline, Pipeline
from thermogen.pipelines.diffusion import interpolate_noise
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule


def tiny_unet(**overrides: object) -> UNet:
    torch.manual_seed(0)
    return UNet(
        **{"in_channels": 1, "image_size": 8, "widths": (4, 8), "block_depth": 1, "embedding_dims": 4, **overrides}
    )


def tiny_pipeline() -> DiffusionPipeline:
    return DiffusionPipeline(tiny_unet(), OffsetCosineSchedule(), DDIMSampler())


def tiny_ebm() -> EBMPipeline:
    torch.manual_seed(0)
    return EBMPipeline(EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler(), num_inference_steps=2)


# ---------------------------------------------------------------------------
# NaN / inf


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Normalizer(mean=(0.5,), std=(float("nan"),)), r"Normalizer argument 'std'\[0\] is nan"),
        (lambda: Normalizer(mean=(float("inf"),), std=(0.5,)), r"Normalizer argument 'mean'\[0\] is inf"),
        (lambda: tiny_unet(embedding_max_frequency=float("nan")), "'embedding_max_frequency' is nan"),
        (lambda: SGLDSampler(noise_std=float("inf")), "'noise_std' is inf"),
    ],
)
def test_non_finite_constructor_arguments_are_refused(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_non_finite_values_in_a_config_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"_class_name": "sgld", "noise_std": Infinity}')
    with pytest.raises(ConfigError, match="'noise_std' is inf; expected a finite number"):
        SGLDSampler.from_config(read_config(tmp_path / "config.json"))


def test_nan_weights_are_refused_at_load(tmp_path: Path) -> None:
    model = tiny_unet()
    model.save_pretrained(tmp_path)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["stem.weight"].fill_(float("nan"))
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="NaN or infinite values: stem.weight"):
        UNet.from_pretrained(tmp_path)


@pytest.mark.parametrize("dtype", [torch.int8, torch.bool])
def test_weights_of_the_wrong_dtype_are_refused_not_cast(tmp_path: Path, dtype: torch.dtype) -> None:
    model = tiny_unet()
    model.save_pretrained(tmp_path)
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=rf"stem.weight: file {dtype} vs model torch.float32"):
        UNet.from_pretrained(tmp_path)


def test_half_precision_weights_still_load(tmp_path: Path) -> None:
    model = tiny_unet()
    model.save_pretrained(tmp_path)
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_file(half, str(tmp_path / "model.safetensors"))
    loaded = UNet.from_pretrained(tmp_path)
    assert torch.equal(loaded.stem.weight, model.stem.weight.half().float())


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_initial_state_must_be_finite(bad: float) -> None:
    noise = torch.randn(2, 1, 8, 8)
    noise[1, 0, 3, 3] = bad
    with pytest.raises(ValueError, match=r"initial_state contains NaN or infinite values: 1 of 128"):
        tiny_pipeline()(initial_state=noise, num_inference_steps=2, progress=False)


def test_complex_initial_state_is_refused() -> None:
    noise = torch.randn(2, 1, 8, 8, dtype=torch.complex64)
    with pytest.raises(TypeError, match="initial_state has dtype torch.complex64; expected a real floating-point"):
        tiny_pipeline()(initial_state=noise, num_inference_steps=2, progress=False)


def test_replay_buffer_refuses_nan_contents(tmp_path: Path) -> None:
    buffer = ReplayBuffer(capacity=4, sample_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="pushed samples contains NaN"):
        buffer.push(torch.full((2, 1, 2, 2), float("nan")))
    buffer.push(torch.zeros(2, 1, 2, 2))
    buffer.save_pretrained(tmp_path)
    save_file(
        {"samples": torch.full((2, 1, 2, 2), float("inf")), "count": torch.tensor(2), "pointer": torch.tensor(2)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(CheckpointError, match="samples contains NaN or infinite values"):
        ReplayBuffer.from_pretrained(tmp_path)


def test_replay_buffer_refuses_a_float_count(tmp_path: Path) -> None:
    ReplayBuffer(capacity=4, sample_shape=(1, 2, 2)).save_pretrained(tmp_path)
    save_file(
        {"samples": torch.zeros(2, 1, 2, 2), "count": torch.tensor(2.7), "pointer": torch.tensor(2)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(CheckpointError, match="count is a \\(\\) torch.float32 tensor; expected an int64 scalar"):
        ReplayBuffer.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------
# dtypes


def test_uint8_images_into_energy_are_refused_with_a_hint() -> None:
    images = torch.full((2, 1, 8, 8), 255, dtype=torch.uint8)
    with pytest.raises(TypeError, match="images has dtype torch.uint8.*divide by 255"):
        tiny_ebm().energy(images)


def test_float_batch_size_is_refused_not_truncated() -> None:
    with pytest.raises(ValueError, match=r"batch_size=2.5"):
        tiny_pipeline()(batch_size=2.5, num_inference_steps=2, progress=False)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# sizes and JSON


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ReplayBuffer(capacity=10**12, sample_shape=(1, 32, 32)), r"would allocate 3\.6 PiB"),
        (lambda: tiny_unet(widths=(8, 100_000)), "widest convolution weight .* would allocate"),
        (
            lambda: DDPMUNet(1, 28, widths=(8, 100_000), block_depth=1),
            r"widest convolution weight of shape \(100000, 200000, 3, 3\) .* would allocate 670\.6 GiB",
        ),
        (
            lambda: EnergyCNN(1, 32, widths=(100_000, 100_000)),
            r"EnergyCNN conv 1 weight of shape \(100000, 100000, 3, 3\) .* would allocate 335\.3 GiB",
        ),
        (
            lambda: EnergyCNN(1, 2**20),
            r"EnergyCNN dense weight \(hidden=64, .* image_size=1048576\) .* would allocate 64\.0 TiB",
        ),
        (
            lambda: EnergyCNN(1, 32, hidden=10**10),
            r"EnergyCNN dense weight \(hidden=10000000000, .* would allocate 9\.3 TiB",
        ),
    ],
)
def test_size_bombs_are_refused_before_allocating(build, message: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=message):
        build()


def test_huge_batch_is_refused_before_allocating() -> None:
    with pytest.raises(ValueError, match=r"initial noise of shape \(1000000000000, 1, 8, 8\).*would allocate"):
        tiny_pipeline()(batch_size=10**12, num_inference_steps=2, progress=False)
    with pytest.raises(ValueError, match=r"initial noise of shape \(1000000000000, 1, 8, 8\).*would allocate"):
        tiny_ebm()(batch_size=10**12, progress=False)
    buffer = ReplayBuffer(capacity=4, sample_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"replay buffer draw .* \(1000000000000, 1, 8, 8\).*would allocate"):
        buffer.sample(10**12)
    ebm = EBMPipeline(EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler(), buffer=buffer, num_inference_steps=2)
    buffer.push(torch.zeros(4, 1, 8, 8))
    with pytest.raises(ValueError, match=r"replay buffer draw .*would allocate"):
        ebm(batch_size=10**12, initial_state="buffer", progress=False)


def test_huge_image_size_is_refused_before_the_noise_is_allocated() -> None:
    """A real U-Net for 2^20 x 2^20 images (its weights do not grow with the image size):
    the pipeline refuses the 4 TiB initial noise before torch allocates it."""
    model = UNet(1, 2**20, widths=(4, 8), block_depth=1, embedding_dims=4)
    pipeline = DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler())
    expected = r"initial noise of shape \(1, 1, 1048576, 1048576\) \(torch.float32\) would allocate 4\.0 TiB"
    with pytest.raises(ValueError, match=expected):
        pipeline(batch_size=1, num_inference_steps=2, progress=False)
    with pytest.raises(ValueError, match=r"initial noise of shape \(2, 1, 1048576, 1048576\)"):
        pipeline.make_noise(2, [torch.Generator().manual_seed(i) for i in range(2)])
    with pytest.raises(ValueError, match=r"initial noise of shape \(1, 1, 1048576, 1048576\) \(torch.float16\)"):
        pipeline.to(torch.float16)(batch_size=1, num_inference_steps=2, progress=False)


def test_deep_or_huge_json_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ConfigError, match="nests lists/objects deeper than 32 levels"):
        read_config(deep)
    huge = tmp_path / "huge.json"
    huge.write_text('{"a": "' + "x" * (checks.MAX_JSON_BYTES + 1) + '"}')
    with pytest.raises(ConfigError, match="a JSON file may be at most 8.0 MiB"):
        read_config(huge)
    brackets_in_strings = tmp_path / "ok.json"
    brackets_in_strings.write_text(json.dumps({"_class_name": "x", "s": "[" * 100}))
    assert read_config(brackets_in_strings)["s"] == "[" * 100


# ---------------------------------------------------------------------------
# pipeline components


def test_wrong_family_component_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="sampler is a SGLDSampler; expected a DiffusionSampler"):
        DiffusionPipeline(tiny_unet(), OffsetCosineSchedule(), SGLDSampler())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sampler is 'ddim' \(a str\).*from_pretrained\(\.\.\., sampler='ddim'\)"):
        DiffusionPipeline(tiny_unet(), OffsetCosineSchedule(), "ddim")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="energy_model is a UNet; expected a EnergyModel"):
        EBMPipeline(tiny_unet(), SGLDSampler())  # type: ignore[arg-type]


def test_override_mapping_without_class_name_says_so(tmp_path: Path) -> None:
    tiny_pipeline().save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match=r"sampler=\{'eta': 0.5\} has no '_class_name'.*registered: .*ddim"):
        Pipeline.from_pretrained(tmp_path, sampler={"eta": 0.5})
    pipe = Pipeline.from_pretrained(tmp_path, sampler={"_class_name": "ddim", "eta": 0.5})
    assert pipe.sampler.config["eta"] == 0.5


def test_eta_on_a_sampler_without_eta_is_named() -> None:
    pipe = tiny_pipeline()
    pipe.sampler = registry.get("samplers", "dpmpp_2m")()
    with pytest.raises(ValueError, match="eta=0.5 given, but sampler DPMSolverPP2M has no eta"):
        pipe(batch_size=1, num_inference_steps=2, eta=0.5, progress=False)


# ---------------------------------------------------------------------------
# slerp


def test_slerp_of_identical_endpoints_is_the_endpoint() -> None:
    a = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    mixed = interpolate_noise(a, a.clone(), 5, method="slerp")
    assert torch.isfinite(mixed).all()
    torch.testing.assert_close(mixed, a.expand(5, -1, -1, -1))
    with pytest.raises(ValueError, match="all zeros"):
        interpolate_noise(a, torch.zeros_like(a), 3, method="slerp")


def test_slerp_still_follows_the_great_circle() -> None:
    a = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    b = torch.tensor([0.0, 1.0, 0.0, 0.0]).reshape(1, 1, 2, 2)
    middle = interpolate_noise(a, b, 3, method="slerp")[1].flatten()
    torch.testing.assert_close(middle, torch.tensor([0.5**0.5, 0.5**0.5, 0.0, 0.0]))


# ---------------------------------------------------------------------------
# constructor arguments without a JSON form


def test_numpy_and_tensor_arguments_are_converted_exactly(tmp_path: Path) -> None:
    model = tiny_unet(widths=[np.int64(4), np.int64(8)], embedding_max_frequency=np.float64(500.0))
    assert model.config["widths"] == [4, 8] and type(model.config["widths"][0]) is int
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["widths"] == [4, 8]
    assert UNet.from_pretrained(tmp_path).config == model.config
    assert Normalizer(mean=torch.tensor([0.25]), std=np.array([0.5])).config == {"mean": [0.25], "std": [0.5]}


def test_arguments_without_a_json_form_and_extra_positionals_are_refused() -> None:
    with pytest.raises(ConfigError, match="Normalizer argument 'mean' is a object"):
        Normalizer(mean=object(), std=(1.0,))  # type: ignore[arg-type]

    class Loose(Configurable):
        registry_kind = "components"

        def __init__(self, *args: int, size: int = 1) -> None:
            self.size = size

    with pytest.raises(ConfigError, match=r"Loose got extra positional arguments \[3, 4\]"):
        Loose(3, 4)
    assert Loose(size=2).config == {"size": 2}


# ---------------------------------------------------------------------------
# schedules


def test_trained_noise_levels_round_trip_and_warn(tmp_path: Path) -> None:
    pipe = tiny_pipeline()
    from thermogen.pipelines.diffusion import record_trained_noise_levels
    from thermogen.schedules.cosine import CosineSchedule

    record_trained_noise_levels(pipe.model, pipe.schedule)
    low, high = pipe.model.trained_noise_levels  # type: ignore[misc]
    assert low == pytest.approx((1 - 0.95**2) ** 0.5) and high == pytest.approx((1 - 0.02**2) ** 0.5)
    pipe.save_pretrained(tmp_path)
    loaded = Pipeline.from_pretrained(tmp_path)
    assert loaded.model.trained_noise_levels == (low, high)
    with pytest.warns(UserWarning, match=r"visits noise levels \[0.0785, 1.0000\], but the model was trained on"):
        Pipeline.from_pretrained(tmp_path, schedule=CosineSchedule())(
            batch_size=1, num_inference_steps=20, progress=False
        )
    with pytest.raises(ConfigError, match="expected 0 <= lowest <= highest <= 1"):
        NoisePredictor.from_config({**loaded.model.to_config(), "_trained_noise_levels": [0.9, 0.1]})
