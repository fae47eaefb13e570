"""Fitted time grids (thermogen.samplers.diffusion.tuning) and the ``custom`` spacing that stores them."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from thermogen.cli import main
from thermogen.errors import ConfigError
from thermogen.interfaces import Sampler
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers import DPMSolverPP3M, HeunSampler, UniPCSampler
from thermogen.samplers.diffusion.spacing import timestep_grid
from thermogen.samplers.diffusion.tuning import fit_timesteps, grid_distance, reference_solution, with_timesteps
from thermogen.schedules import LinearSchedule
from thermogen.testing import MIXTURES, NoisyMixturePredictor

FIXED = ("leading", "trailing", "linspace", "uniform", "log_snr", "karras")


pytestmark = pytest.mark.usefixtures("one_thread")


def noise(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_a_fitted_6_nfe_grid_beats_every_fixed_spacing_on_held_out_noise() -> None:
    """DPM-Solver++(3M), 6 evaluations, ``three_modes`` mixture, ``linear`` schedule.

    Fitted on 256 draws, measured on 1,000 other draws against the 200-step
    reference from the same noise (mean distance per sample). Measured: best
    fixed spacing ``uniform`` 0.194 (``log_snr``, the sampler's default, 0.931),
    fitted 0.084 (2.3x closer; the fit starts from ``uniform``, 63 sampling runs,
    under a second on one thread). The test asks for 1.5x.
    """
    schedule = LinearSchedule()
    model = NoisyMixturePredictor(MIXTURES["three_modes"]())
    fit_x, test_x = noise(256, 0), noise(1000, 1)
    fitted = fit_timesteps(model, schedule, DPMSolverPP3M(), 6, fit_x, reference_solution(model, schedule, fit_x, 200))
    test_reference = reference_solution(model, schedule, test_x, 200)
    fixed = {
        spacing: grid_distance(
            model, schedule, DPMSolverPP3M(), timestep_grid(schedule, 6, spacing)[:-1].tolist(), test_x, test_reference
        )
        for spacing in FIXED
    }
    tuned = grid_distance(model, schedule, DPMSolverPP3M(), fitted.timesteps, test_x, test_reference)
    assert fitted.distance < fitted.initial_distance
    assert tuned * 1.5 < min(fixed.values()), (tuned, fixed)
    assert len(fitted.timesteps) == 6 and all(0.0 < t <= 1.0 for t in fitted.timesteps)
    assert all(b < a for a, b in itertools.pairwise(fitted.timesteps))


def test_custom_spacing_visits_the_stored_times_and_round_trips(tmp_path: Path) -> None:
    schedule = LinearSchedule()
    times = [0.97, 0.61, 0.3, 0.05]
    sampler = UniPCSampler(spacing="custom", timesteps=times)
    assert list(sampler.grid(schedule, 4).times) == [*times, 0.0]
    sampler.save_pretrained(tmp_path / "sampler")
    loaded = Sampler.from_pretrained(tmp_path / "sampler")
    assert isinstance(loaded, UniPCSampler) and loaded.config == sampler.config
    assert list(loaded.grid(schedule, 4).times) == [*times, 0.0]
    model = NoisyMixturePredictor(MIXTURES["ring8"]())
    x = noise(50, 3)
    assert torch.equal(
        sampler.sample(model, x, sampler.grid(schedule, 4)).sample,
        loaded.sample(model, x, loaded.grid(schedule, 4)).sample,
    )


def test_a_pipeline_saved_with_a_fitted_grid_reloads_it(tmp_path: Path) -> None:
    from thermogen.models.unet import UNet
    from thermogen.normalizer import Normalizer

    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    sampler = with_timesteps(DPMSolverPP3M(), [1.0, 0.4, 0.02])
    pipe = DiffusionPipeline(model, LinearSchedule(), sampler, Normalizer([0.2], [0.3]))
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = Pipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded, DiffusionPipeline)
    assert loaded.sampler.config["spacing"] == "custom" and loaded.sampler.config["timesteps"] == [1.0, 0.4, 0.02]
    noise_ = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    kwargs = {"initial_state": noise_, "num_inference_steps": 3, "output_type": "tensor", "progress": False}
    assert torch.equal(pipe(**kwargs).images, loaded(**kwargs).images)


@pytest.mark.parametrize(
    ("timesteps", "fragment"),
    [
        ([0.5, 0.5, 0.1], "strictly decreasing"),
        ([0.2, 0.5], "strictly decreasing"),
        ([1.5, 0.5], r"in \(0, 1\]"),
        ([0.5, 0.0], r"in \(0, 1\]"),
        ([0.5, float("nan")], r"'timesteps'\[1\] is nan; expected a finite number"),
        ([], "needs timesteps"),
        (None, "needs timesteps"),
    ],
)
def test_bad_custom_times_are_refused(timesteps: list[float] | None, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        UniPCSampler(spacing="custom", timesteps=timesteps)


def test_custom_times_need_the_custom_spacing_and_their_number_of_steps() -> None:
    with pytest.raises(ConfigError, match="use spacing='custom'"):
        UniPCSampler(spacing="log_snr", timesteps=[0.9, 0.1])
    with pytest.raises(ValueError, match="has 2 steps.*num_steps=5"):
        UniPCSampler(spacing="custom", timesteps=[0.9, 0.1]).grid(LinearSchedule(), 5)
    with pytest.raises(ValueError, match="several model evaluations"):
        x = noise(4, 0)
        fit_timesteps(NoisyMixturePredictor(MIXTURES["ring8"]()), LinearSchedule(), HeunSampler(), 4, x, x)


def test_tune_steps_command_writes_a_pipeline_with_the_fitted_grid(tmp_path: Path) -> None:
    from thermogen.models.unet import UNet
    from thermogen.normalizer import Normalizer

    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4)
    DiffusionPipeline(model, LinearSchedule(), UniPCSampler(), Normalizer([0.2], [0.3])).save_pretrained(
        tmp_path / "pipe"
    )
    args = ["tune-steps", str(tmp_path / "pipe"), "--nfe", "3", "--batch", "8", "--reference-steps", "10"]
    assert main([*args, "--sweeps", "1", "--sampler", "dpmpp_3m", "--out", str(tmp_path / "tuned")]) == 0
    loaded = Pipeline.from_pretrained(tmp_path / "tuned")
    assert isinstance(loaded.sampler, DPMSolverPP3M)
    times = loaded.sampler.config["timesteps"]
    assert loaded.sampler.config["spacing"] == "custom" and len(times) == 3
    assert all(b < a for a, b in itertools.pairwise(times))


def test_tune_steps_can_measure_the_distance_in_the_mnist_classifiers_feature_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from thermogen.models.unet import UNet
    from thermogen.normalizer import Normalizer

    torch.manual_seed(0)
    model = UNet(1, 28, widths=(4, 8), block_depth=1, embedding_dims=4)
    DiffusionPipeline(model, LinearSchedule(), DPMSolverPP3M(), Normalizer([0.13], [0.31])).save_pretrained(
        tmp_path / "pipe"
    )
    args = ["tune-steps", str(tmp_path / "pipe"), "--nfe", "2", "--batch", "4", "--reference-steps", "4"]
    assert main([*args, "--sweeps", "1", "--distance", "mnist-features", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "distance to the reference" in printed and "timesteps:" in printed


def test_grid_distance_in_an_embedding_is_the_distance_between_embeddings() -> None:
    schedule, model = LinearSchedule(), NoisyMixturePredictor(MIXTURES["unequal"]())
    x = noise(64, 5)
    reference = reference_solution(model, schedule, x, 50)
    times = [1.0, 0.5, 0.1, 0.01]
    plain = grid_distance(model, schedule, DPMSolverPP3M(), times, x, reference)
    scaled = grid_distance(model, schedule, DPMSolverPP3M(), times, x, 3.0 * reference, embed=lambda y: 3.0 * y)
    assert scaled == pytest.approx(3.0 * plain, rel=1e-12)
    first = grid_distance(model, schedule, DPMSolverPP3M(), times, x, reference[:, :1], embed=lambda y: y[:, :1])
    assert 0.0 < first < plain
