"""DDIM on linear and improved_cosine betas, UniPC and DEIS against diffusers, from stored reference values.

tests/reference/make_few_step_reference.py wrote the reference with diffusers'
schedulers on float64 tables, the exact noise predictor of a 2-D Gaussian
mixture and x_T = randn(64, 2); diffusers is not needed here. Each step starts
from the reference sample, so errors do not compound.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
from locations import REFERENCE
from safetensors import safe_open
from safetensors.torch import load_file

from thermogen.interfaces import NoiseSchedule
from thermogen.samplers.diffusion.adams import DEISSampler
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.unipc import UniPCSampler
from thermogen.schedules import ImprovedCosineSchedule, LinearSchedule
from thermogen.testing import GaussianMixture, NoisyMixturePredictor

REFERENCE_VALUES = REFERENCE / "few_step_reference.safetensors"
T = 1000
REF = load_file(str(REFERENCE_VALUES))
with safe_open(str(REFERENCE_VALUES), framework="pt") as _file:
    CASES: dict[str, dict] = json.loads(_file.metadata()["cases"])
MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
PREDICTOR = NoisyMixturePredictor(MIX)
SCHEDULES = {"linear": LinearSchedule, "improved_cosine": ImprovedCosineSchedule}


def sampler_for(case: dict) -> DiffusionSampler:
    if case["kind"] == "ddim":
        return DDIMSampler(spacing=case["spacing"])
    if case["kind"] == "unipc":
        return UniPCSampler(
            solver_order=case["solver_order"],
            variant=case["solver_type"],
            spacing="trailing",
            disable_corrector=tuple(case["disable_corrector"]),
        )
    if case["kind"] == "deis":
        return DEISSampler(solver_order=case["solver_order"], spacing="trailing", final_time="first_step")
    raise ValueError(case["kind"])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_same_alphas_cumprod(name: str) -> None:
    schedule = SCHEDULES[name]()
    torch.testing.assert_close(schedule.alphas_cumprod, REF[f"alphas_cumprod/{name}"], rtol=1e-13, atol=0)


def check_steps(
    sampler: DiffusionSampler, schedule: NoiseSchedule, name: str, steps: int, last: int
) -> tuple[TimeGrid, Any]:
    """Steps 0 .. last - 1 of the reference, each from the reference sample, to 1e-6; returns the grid and state."""
    grid = sampler.grid(schedule, steps)
    timesteps, samples = REF[f"{name}/timesteps"], REF[f"{name}/samples"]
    assert list(grid.times[:-1]) == ((timesteps.double() + 1.0) / T).tolist()
    state = sampler.initial_state(grid)
    for i in range(last):
        x = samples[i]
        out = sampler.step(PREDICTOR.denoise(x, *grid.rates(i)), grid, i, x, state)
        torch.testing.assert_close(out.prev_sample, samples[i + 1], rtol=1e-6, atol=1e-6, msg=f"step {i}")
        if f"{name}/pred_x0" in REF:
            torch.testing.assert_close(out.pred_original_sample, REF[f"{name}/pred_x0"][i], rtol=1e-6, atol=1e-6)
        state = out.state
    return grid, state


@pytest.mark.parametrize("name", sorted(k for k, c in CASES.items() if c["kind"] == "ddim"))
def test_ddim_matches_diffusers_on_linear_and_improved_cosine(name: str) -> None:
    """DDIM is exact where alpha_bar is tiny: improved_cosine's t = 1 has alpha_bar = 2.4e-9."""
    case = CASES[name]
    check_steps(sampler_for(case), SCHEDULES[case["beta_schedule"]](), name, case["steps"], case["steps"])


@pytest.mark.parametrize("name", sorted(k for k, c in CASES.items() if c["kind"] == "unipc"))
def test_unipc_matches_diffusers_step_for_step(name: str) -> None:
    """Predictor, corrector (bh1/bh2, orders 1-3), warm-up, lower_order_final and disable_corrector.

    diffusers' bh1 returns NaN on the step to sigma = 0 (B(h) = -h is infinite there);
    that step is checked against its limit, the x_0 estimate.
    """
    case = CASES[name]
    steps = case["steps"]
    sampler = sampler_for(case)
    schedule = SCHEDULES[case["beta_schedule"]]()
    finite = bool(REF[f"{name}/samples"][-1].isfinite().all())
    assert finite == (case["solver_type"] == "bh2")
    grid, state = check_steps(sampler, schedule, name, steps, steps if finite else steps - 1)
    if not finite:
        x, last = REF[f"{name}/samples"][-2], grid.num_steps - 1
        out = sampler.step(PREDICTOR.denoise(x, *grid.rates(last)), grid, last, x, state)
        assert torch.equal(out.prev_sample, out.pred_original_sample)


@pytest.mark.parametrize("name", sorted(k for k, c in CASES.items() if c["kind"] == "deis"))
def test_deis_matches_diffusers_step_for_step(name: str) -> None:
    """DEIS tAB orders 1-3 (Lagrange extrapolation of eps in log rho), diffusers' grid ending at t = 1/T."""
    case = CASES[name]
    check_steps(sampler_for(case), SCHEDULES[case["beta_schedule"]](), name, case["steps"], case["steps"])
