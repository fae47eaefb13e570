"""The diffusion-sampler protocol: a sampler is configuration only, and its three loops agree bitwise.

A loop's data lives in its :class:`TimeGrid` and in the state each step returns, so one sampler
object runs interleaved loops as if each ran alone; the diffusers-style loop (the caller evaluates
``model.denoise`` and calls ``step``), the denoiser-style loop (``solve_step``) and ``sample`` are
one computation; and the model's prediction type does not change the samples (the exact denoiser
is one function in all three parameterisations). Ground truth: the 2-D Gaussian mixture's exact
denoiser (:class:`NoisyMixturePredictor`).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import Tensor

from thermogen import registry
from thermogen.samplers import DDIMSampler, DiffusionSampler, DPMSolverPP2M, HeunSampler, TimeGrid
from thermogen.schedules import LinearSchedule, OffsetCosineSchedule
from thermogen.testing import GaussianMixture, NoisyMixturePredictor

MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
MODEL = NoisyMixturePredictor(MIX)
DIFFUSION = sorted(n for n in registry.names("samplers") if issubclass(registry.get("samplers", n), DiffusionSampler))
SINGLE_EVALUATION = [n for n in DIFFUSION if registry.get("samplers", n).evaluations_per_step == 1]


pytestmark = pytest.mark.usefixtures("one_thread")


def make(name: str) -> DiffusionSampler:
    """The registered sampler with the configuration its conformance claims are made for (if any)."""
    cls = registry.get("samplers", name)
    return cls(**getattr(cls, "conformance", {}).get("config", {}))


def noise(n: int, seed: int) -> Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_the_protocol_tests_cover_every_registered_diffusion_sampler() -> None:
    assert {"ddim", "ddpm", "deis", "dpmpp_2m", "dpmpp_3m", "euler", "heun", "ipndm", "unipc"} <= set(DIFFUSION)
    assert "heun" not in SINGLE_EVALUATION and "ddim" in SINGLE_EVALUATION


@pytest.mark.parametrize("name", DIFFUSION)
def test_one_sampler_runs_two_interleaved_loops_as_if_each_ran_alone(name: str) -> None:
    """Loop A (8 steps) and loop B (6 steps, another x_T and generator) take turns on one sampler object;
    each ends bitwise where ``sample`` alone ends."""
    sampler, schedule = make(name), OffsetCosineSchedule()
    grids = {"a": sampler.grid(schedule, 8), "b": sampler.grid(schedule, 6)}
    starts = {"a": noise(32, 0), "b": noise(32, 1)}
    seeds = {"a": 10, "b": 11}
    alone = {
        k: sampler.sample(MODEL, starts[k], grids[k], generator=torch.Generator().manual_seed(seeds[k])) for k in grids
    }
    generators = {k: torch.Generator().manual_seed(seeds[k]) for k in grids}
    x = dict(starts)
    x0: dict[str, Tensor] = {}
    states = {k: sampler.initial_state(grids[k]) for k in grids}
    for i in range(max(g.num_steps for g in grids.values())):
        for k, grid in grids.items():
            if i < grid.num_steps:
                out = sampler.solve_step(MODEL.denoise, grid, i, x[k], states[k], generators[k])
                x[k], x0[k], states[k] = out.prev_sample, out.pred_original_sample, out.state
    for k in grids:
        assert torch.equal(x[k], alone[k].sample), f"loop {k}: sample"
        assert torch.equal(x0[k], alone[k].pred_original_sample), f"loop {k}: x_0 estimate"
    assert not torch.equal(x["a"], x["b"])


@pytest.mark.parametrize("name", SINGLE_EVALUATION)
def test_diffusers_style_denoiser_style_and_sample_loops_are_bitwise_equal(name: str) -> None:
    """``model.denoise`` + ``step``, ``solve_step(model.denoise, ...)`` and ``sample`` (given the model or its
    denoiser) run the same arithmetic: the same samples, bit for bit, with the same generator seed."""
    sampler, schedule = make(name), OffsetCosineSchedule()
    grid, x_T = sampler.grid(schedule, 10), noise(64, 2)

    def loop(style: str) -> tuple[Tensor, Tensor]:
        generator = torch.Generator().manual_seed(3)
        x, x0, state = x_T, x_T, sampler.initial_state(grid)
        for i in range(grid.num_steps):
            if style == "diffusers":
                out = sampler.step(MODEL.denoise(x, *grid.rates(i)), grid, i, x, state, generator=generator)
            else:
                out = sampler.solve_step(MODEL.denoise, grid, i, x, state, generator=generator)
            x, x0, state = out.prev_sample, out.pred_original_sample, out.state
        return x, x0

    diffusers_style, denoiser_style = loop("diffusers"), loop("denoiser")
    for denoiser in (MODEL, MODEL.denoise):
        whole = sampler.sample(denoiser, x_T, grid, generator=torch.Generator().manual_seed(3))
        for got in (diffusers_style, denoiser_style):
            assert torch.equal(got[0], whole.sample) and torch.equal(got[1], whole.pred_original_sample)


def test_heun_has_no_single_evaluation_step_and_its_solve_step_loop_is_sample() -> None:
    sampler, schedule = HeunSampler(), OffsetCosineSchedule()
    grid, x_T = sampler.grid(schedule, 10), noise(64, 2)
    with pytest.raises(NotImplementedError, match=r"HeunSampler evaluates the model 2 times per step: call solve_step"):
        sampler.step(MODEL.denoise(x_T, *grid.rates(0)), grid, 0, x_T, sampler.initial_state(grid))
    x, state = x_T, sampler.initial_state(grid)
    for i in range(grid.num_steps):
        out = sampler.solve_step(MODEL.denoise, grid, i, x, state)
        x, state = out.prev_sample, out.state
    whole = sampler.sample(MODEL, x_T, grid)
    assert torch.equal(x, whole.sample) and torch.equal(out.pred_original_sample, whole.pred_original_sample)


@pytest.mark.parametrize("name", DIFFUSION)
def test_a_sampler_is_configuration_only(name: str) -> None:
    """Building a grid and a state, stepping and a whole ``sample`` run leave the object's ``__dict__`` as it was."""
    sampler, schedule = make(name), OffsetCosineSchedule()
    before = copy.deepcopy(sampler.__dict__)
    config = sampler.config
    grid = sampler.grid(schedule, 7)
    sampler.solve_step(MODEL.denoise, grid, 0, noise(8, 0), sampler.initial_state(grid), torch.Generator())
    sampler.sample(MODEL, noise(8, 0), grid, generator=torch.Generator().manual_seed(1), return_trajectory=True)
    assert sampler.__dict__ == before
    assert sampler.config == config


@pytest.mark.parametrize("factory", [DDIMSampler, DPMSolverPP2M], ids=lambda f: f.__name__)
def test_samples_do_not_depend_on_the_models_prediction_type(factory: Any) -> None:
    """The exact denoiser is one function whether the network outputs epsilon, x_0 or v: ``sample`` gives the
    same samples and x_0 estimates for all three, up to float64 rounding (1e-9)."""
    sampler, schedule = factory(), OffsetCosineSchedule()
    grid = sampler.grid(schedule, 20)
    x_T = MIX.noised(grid.noise_rates[0]).sample(500, torch.Generator().manual_seed(4), dtype=torch.float64)
    outs = {
        p: sampler.sample(NoisyMixturePredictor(MIX, prediction_type=p), x_T, grid) for p in ("epsilon", "sample", "v")
    }
    for p in ("sample", "v"):
        torch.testing.assert_close(outs[p].sample, outs["epsilon"].sample, rtol=0, atol=1e-9, msg=p)
        torch.testing.assert_close(
            outs[p].pred_original_sample, outs["epsilon"].pred_original_sample, rtol=0, atol=1e-9, msg=p
        )
    assert float((outs["epsilon"].sample - x_T).abs().max()) > 0.1  # the loop moved the samples


def test_a_grid_is_a_value_shared_by_loops() -> None:
    """``grid`` returns an immutable TimeGrid equal to ``TimeGrid.from_times`` on its times."""
    sampler, schedule = DPMSolverPP2M(), OffsetCosineSchedule()
    grid = sampler.grid(schedule, 5)
    assert grid == sampler.grid(schedule, 5) == TimeGrid.from_times(schedule, grid.as_tensor())
    with pytest.raises(AttributeError):
        grid.times = (1.0, 0.0)  # type: ignore[misc]


@pytest.mark.parametrize("name", ["unipc", "ipndm", "deis", "dpmpp_3m"])
def test_a_multistep_loop_started_part_way_along_a_grid_equals_the_loop_on_the_rest_of_it(name: str) -> None:
    """SDEdit-style loops start at step k of a grid with ``initial_state(grid)``: the steps then use the
    history they have (as a loop on the remaining times does), not the history planned for a start at 0."""
    sampler, schedule = registry.get("samplers", name)(), LinearSchedule()
    model = MODEL
    grid = sampler.grid(schedule, 10)
    x_k = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x, state = x_k, sampler.initial_state(grid)
    for i in range(3, grid.num_steps):
        out = sampler.step(model.denoise(x, *grid.rates(i)), grid, i, x, state)
        x, state = out.prev_sample, out.state
    rest = TimeGrid.from_times(schedule, grid.times[3:])
    expected = sampler.sample(model, x_k, rest).sample
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-12)
