"""DDIM (and DDPM, DPM-Solver++ 2M) against diffusers, from stored reference values.

tests/reference/make_ddim_reference.py wrote the reference with diffusers'
schedulers on float64 linear betas (1e-4 .. 0.02, T = 1000), a fake denoiser
``0.5 sin(2x + 3t) + 0.3 x`` and 10 steps; diffusers is not needed here.
"""

from __future__ import annotations

import json

import pytest
import torch
from locations import REFERENCE
from safetensors import safe_open
from safetensors.torch import load_file

from thermogen.parameterisation import denoised_from_output
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M
from thermogen.samplers.diffusion.spacing import timestep_grid
from thermogen.schedules import LinearSchedule

REFERENCE_VALUES = REFERENCE / "ddim_reference.safetensors"
T = 1000
SEED = 1
REF = load_file(str(REFERENCE_VALUES))
with safe_open(str(REFERENCE_VALUES), framework="pt") as _file:
    CASES = json.loads(_file.metadata()["cases"])
PREDICTION = {"epsilon": "epsilon", "sample": "sample", "v_prediction": "v"}


def fake_model(x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    return 0.5 * torch.sin(2.0 * x + 3.0 * float(t)) + 0.3 * x


def sampler_for(name: str, config: dict) -> DDIMSampler | DDPMSampler | DPMSolverPP2M:
    """The thermogen sampler a diffusers config means (written out by hand here; from_diffusers has its own tests)."""
    common = {
        "spacing": config.get("timestep_spacing", "leading"),
        "steps_offset": config.get("steps_offset", 0),
    }
    if name.startswith("dpmpp"):
        return DPMSolverPP2M(**common)
    clip = {
        "clip_sample": 1.0 if config.get("clip_sample", True) else None,
        "dynamic_threshold": config.get("dynamic_thresholding_ratio", 0.995) if config.get("thresholding") else None,
        "sample_max_value": config.get("sample_max_value", 1.0) if config.get("thresholding") else None,
    }
    if name.startswith("ddpm"):
        return DDPMSampler(variance_type=config.get("variance_type", "fixed_small"), **common, **clip)
    final = "zero" if config.get("set_alpha_to_one", True) else "first_step"
    return DDIMSampler(eta=config.get("_eta", 0.0), final_time=final, **common, **clip)


def to_time(k: torch.Tensor, final_time: str) -> float:
    """Integer step k -> t = (k + 1) / T; -1 means the final alpha_bar."""
    if int(k) >= 0:
        return (int(k) + 1) / T
    return 0.0 if final_time == "zero" else 1.0 / T


@pytest.fixture(scope="module")
def schedule() -> LinearSchedule:
    return LinearSchedule(beta_start=1e-4, beta_end=0.02, num_train_timesteps=T)


def test_same_alphas_cumprod(schedule: LinearSchedule) -> None:
    torch.testing.assert_close(schedule.alphas_cumprod, REF["alphas_cumprod"], rtol=1e-15, atol=0)


@pytest.mark.parametrize("key", sorted(k for k in REF if k.startswith("grid/")))
def test_integer_spacings_match_diffusers_timesteps(key: str, schedule: LinearSchedule) -> None:
    _, spacing, offset, n = key.split("/")
    grid = timestep_grid(schedule, int(n), spacing, "zero", int(offset))
    expected = (REF[key].to(torch.float64) + 1.0) / T
    assert grid.dtype == torch.float64 and grid.shape == (int(n) + 1,)
    assert torch.equal(grid[:-1], expected)
    assert grid[-1] == 0.0


@pytest.mark.parametrize("name", sorted(CASES))
def test_steps_match_diffusers(name: str, schedule: LinearSchedule) -> None:
    config = CASES[name]
    sampler = sampler_for(name, config)
    final = getattr(sampler, "final_time", "zero")
    prediction_type = PREDICTION[config.get("prediction_type", "epsilon")]
    grid = sampler.grid(schedule, 10)
    times = grid.times
    timesteps, prevs = REF[f"{name}/timesteps"], REF[f"{name}/prev_timesteps"]
    samples = REF[f"{name}/samples"]
    # the grid is diffusers' timesteps, and every reference step went to the next grid time
    assert list(times) == [to_time(k, final) for k in timesteps] + [to_time(prevs[-1], final)]
    assert [to_time(k, final) for k in prevs] == list(times[1:])
    # diffusers casts the sample to float32 inside DPMSolverMultistepScheduler.step
    tolerance = 1e-5 if name.startswith("dpmpp") else 1e-6
    x = samples[0]
    generator = torch.Generator().manual_seed(SEED)  # the reference drew its z from this stream
    state = sampler.initial_state(grid)
    for i in range(len(timesteps)):  # the diffusers-style loop: the caller evaluates the model
        denoised = denoised_from_output(fake_model(x, times[i]), prediction_type, x, *grid.rates(i))
        out = sampler.step(denoised, grid, i, x, state, generator=generator)
        torch.testing.assert_close(out.prev_sample, samples[i + 1], rtol=tolerance, atol=tolerance)
        if f"{name}/pred_x0" in REF:
            torch.testing.assert_close(out.pred_original_sample, REF[f"{name}/pred_x0"][i], rtol=1e-6, atol=1e-6)
        x, state = samples[i + 1], out.state  # continue from the reference so errors do not compound
