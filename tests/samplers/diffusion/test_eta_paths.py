"""``eta`` given to a sampler that has none: every way of passing it ends in an error that says so.

The paths: the pipeline call, ``from_pretrained`` (as a plain keyword, beside a sampler name or
object, inside a sampler config), ``Sampler.from_config``, ``sampler.step`` / ``solve_step`` and
``thermogen sample``.
Where the sampler has eta, the same paths give what ``DDIMSampler(eta=...)`` gives.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thermogen import registry
from thermogen.cli import main
from thermogen.errors import ConfigError
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.parameterisation import Denoised
from thermogen.pipelines import DiffusionPipeline, EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule

WITHOUT_ETA = ("ddpm", "deis", "dpmpp_2m", "dpmpp_3m", "heun", "ipndm", "unipc")


def tiny_pipeline(sampler: object = None) -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    torch.nn.init.normal_(model.head.weight, std=0.1)
    return DiffusionPipeline(model, OffsetCosineSchedule(), sampler or DDIMSampler())  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eta") / "pipe"
    tiny_pipeline().save_pretrained(path)
    return path


def test_the_registered_samplers_without_eta_are_the_ones_tested() -> None:
    diffusion = [n for n in registry.names("samplers") if n not in ("sgld", "ula", "mala", "hmc")]
    assert sorted(n for n in diffusion if "eta" not in registry.get("samplers", n)().config) == sorted(WITHOUT_ETA)


@pytest.mark.parametrize("name", WITHOUT_ETA)
def test_pipeline_call_with_eta(name: str) -> None:
    pipeline = tiny_pipeline(registry.get("samplers", name)())
    with pytest.raises(ValueError, match=r"eta=0.5 given, but sampler \w+ has no eta .*'_class_name': 'ddim'"):
        pipeline(batch_size=1, num_inference_steps=2, eta=0.5, progress=False)


@pytest.mark.parametrize("name", WITHOUT_ETA)
def test_from_pretrained_with_eta_beside_a_sampler_name_or_object(saved: Path, name: str) -> None:
    expected = r"eta=0.5 is a keyword of DiffusionPipeline's call, not a setting to load with; .*pipe\(eta=0.5\)"
    with pytest.raises(ConfigError, match=expected):
        DiffusionPipeline.from_pretrained(saved, sampler=name, eta=0.5)
    with pytest.raises(ConfigError, match=expected):
        DiffusionPipeline.from_pretrained(saved, sampler=registry.get("samplers", name)(), eta=0.5)


def test_from_pretrained_with_eta_alone(saved: Path) -> None:
    with pytest.raises(ConfigError, match=r"eta=0.5 is a keyword of DiffusionPipeline's call"):
        DiffusionPipeline.from_pretrained(saved, eta=0.5)


@pytest.mark.parametrize("name", WITHOUT_ETA)
def test_eta_inside_a_sampler_config(saved: Path, name: str) -> None:
    cls = registry.get("samplers", name)
    with pytest.raises(ConfigError, match=rf"{cls.__name__} has no argument 'eta'; it takes \["):
        DiffusionPipeline.from_pretrained(saved, sampler={"_class_name": name, "eta": 0.5})
    with pytest.raises(ConfigError, match=rf"{cls.__name__} has no argument 'eta'"):
        cls.from_config(cls().to_config(), eta=0.5)


@pytest.mark.parametrize("name", WITHOUT_ETA)
def test_step_with_eta(name: str) -> None:
    """Both step-wise entry points (``step``: diffusers style; ``solve_step``: with a denoiser) refuse eta."""
    sampler = registry.get("samplers", name)()
    grid = sampler.grid(OffsetCosineSchedule(), 2)
    state = sampler.initial_state(grid)
    x = torch.zeros(1, 1, 8, 8)
    denoised = Denoised(x0=x, eps=x)
    with pytest.raises(TypeError, match=r"step\(\) got an unexpected keyword argument 'eta'"):
        sampler.step(denoised, grid, 0, x, state, eta=0.5)
    with pytest.raises(TypeError, match=r"solve_step\(\) got an unexpected keyword argument 'eta'"):
        sampler.solve_step(lambda x_t, a, s: denoised, grid, 0, x, state, eta=0.5)


def test_ebm_pipeline_with_eta(tmp_path: Path) -> None:
    pipeline = EBMPipeline(EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler(), num_inference_steps=2)
    with pytest.raises(ValueError, match=r"eta=0.5 is the stochasticity of diffusion samplers; EBMPipeline does not"):
        pipeline(batch_size=1, eta=0.5, progress=False)
    pipeline.save_pretrained(tmp_path / "ebm")
    with pytest.raises(ConfigError, match=r"EBMPipeline has no argument 'eta'; it takes \[.*'num_inference_steps'"):
        EBMPipeline.from_pretrained(tmp_path / "ebm", eta=0.5)


def test_every_path_with_eta_on_ddim_gives_the_ddim_eta_images(saved: Path) -> None:
    def run(pipeline: DiffusionPipeline, eta: float | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(1)
        out = pipeline(
            batch_size=2, num_inference_steps=3, generator=generator, eta=eta, output_type="pt", progress=False
        )
        return out.images

    reference = run(tiny_pipeline(DDIMSampler(eta=1.0)))
    assert not torch.equal(reference, run(tiny_pipeline(DDIMSampler(eta=0.0))))  # eta changes the images
    assert torch.equal(run(tiny_pipeline(), eta=1.0), reference)
    loaded = DiffusionPipeline.from_pretrained(saved, sampler={"_class_name": "ddim", "eta": 1.0})
    assert torch.equal(run(loaded), reference)


def test_cli_sample_with_eta(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "grid.png")
    common = ["--n", "1", "--steps", "1", "--out", out, "--no-progress"]
    assert main(["sample", str(saved), "--sampler", "heun", "--eta", "0.5", *common]) == 2
    assert "thermogen sample: error: eta=0.5 given, but sampler HeunSampler has no eta" in capsys.readouterr().err
    assert main(["sample", str(saved), "--eta", "0.5", *common]) == 0

    ebm = EBMPipeline(EnergyCNN(1, 8, widths=(4,), hidden=4), SGLDSampler(), num_inference_steps=2)
    ebm.save_pretrained(tmp_path / "ebm")
    assert main(["sample", str(tmp_path / "ebm"), "--eta", "0.5", *common]) == 2
    assert "error: eta=0.5 is the stochasticity of diffusion samplers; EBMPipeline does not take it" in (
        capsys.readouterr().err
    )
