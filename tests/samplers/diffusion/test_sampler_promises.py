"""Sampler promises checked against closed forms: one stochastic step's noise, lower_order_final,
the global-RNG guarantee, and the N -> M replay-buffer rule on resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor

from thermogen import registry
from thermogen.interfaces import EnergyModel
from thermogen.parameterisation import denoised_from_output
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.schedules.cosine import CosineSchedule, OffsetCosineSchedule
from thermogen.testing import GaussianMixture, NoisyMixturePredictor
from thermogen.testing.gaussian_mixture import GaussianMixtureEnergy


def one_step(sampler, t: float, t_prev: float, x: Tensor, seed: int) -> Tensor:
    """One step from t to t_prev (a two-time grid on offset_cosine) with an epsilon network that outputs 0."""
    grid = TimeGrid.from_times(OffsetCosineSchedule(), [t, t_prev])
    denoised = denoised_from_output(torch.zeros_like(x), "epsilon", x, *grid.rates(0))
    generator = torch.Generator().manual_seed(seed)
    return sampler.step(denoised, grid, 0, x, sampler.initial_state(grid), generator=generator).prev_sample


def rates(t: float) -> tuple[float, float]:
    angle = math.acos(0.95) + t * (math.acos(0.02) - math.acos(0.95))
    return math.cos(angle), math.sin(angle)


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_euler_ancestral_step_adds_k_diffusions_noise(eta: float) -> None:
    """With eps^ = 0, x' = a' x / a + a' sigma_up z, sigma_up = min(σ', η sqrt(σ'^2 (σ^2 - σ'^2) / σ^2))."""
    x = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, t_prev = 0.75, 0.5
    (a, s), (a_prev, s_prev) = rates(t), rates(t_prev)
    sigma, sigma_prev = s / a, s_prev / a_prev
    sigma_up = min(sigma_prev, eta * math.sqrt(sigma_prev**2 * (sigma**2 - sigma_prev**2) / sigma**2))
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected = a_prev * x / a + a_prev * sigma_up * z
    torch.testing.assert_close(one_step(EulerSampler(eta=eta), t, t_prev, x, 9), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("variance_type", ["fixed_small", "fixed_large"])
def test_ddpm_step_is_the_posterior_mean_plus_its_variance(variance_type: str) -> None:
    x = torch.randn(2000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t, t_prev in ((0.75, 0.5), (0.25, 0.0)):
        (a, s), (a_prev, s_prev) = rates(t), rates(t_prev)
        beta = 1 - (a / a_prev) ** 2  # beta_{t|t'}
        x0 = x / a  # eps^ = 0
        mean = a_prev * beta / s**2 * x0 + (a / a_prev) * s_prev**2 / s**2 * x
        variance = s_prev**2 / s**2 * beta if variance_type == "fixed_small" else beta  # s' > 0 on this schedule
        z = torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        got = one_step(DDPMSampler(variance_type=variance_type), t, t_prev, x, 4)
        torch.testing.assert_close(got, mean + math.sqrt(variance) * z, rtol=1e-10, atol=1e-10)


def test_ddpm_fixed_large_adds_no_noise_on_the_step_to_clean_data() -> None:
    sampler = DDPMSampler(variance_type="fixed_large")
    grid = TimeGrid.from_times(CosineSchedule(), [0.25, 0.0])  # noise_rate(0) = 0
    x = torch.randn(8, 4, dtype=torch.float64)
    a, s = grid.rates(0)
    denoised = denoised_from_output(torch.zeros_like(x), "epsilon", x, a, s)  # eps^ = 0
    out = sampler.step(denoised, grid, 0, x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.prev_sample, x / a, rtol=1e-10, atol=1e-10)  # the posterior mean x0^, no noise


def test_ddim_eta_scales_the_step_noise_as_eq_16() -> None:
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t, t_prev, eta = 0.75, 0.5, 0.6
    (a, s), (a_prev, s_prev) = rates(t), rates(t_prev)
    sigma = eta * (s_prev / s) * math.sqrt(1 - (a / a_prev) ** 2)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(one_step(DDIMSampler(eta=eta), t, t_prev, x, 3), a_prev * x / a + sigma * z)


def mixture_model() -> NoisyMixturePredictor:
    return NoisyMixturePredictor(GaussianMixture([[-1.0, 0.5], [1.0, -0.5]], [0.3, 0.5]))


@pytest.mark.parametrize("num_steps", [5, 8])
def test_lower_order_final_makes_the_last_step_first_order(num_steps: int) -> None:
    """With lower_order_final and < 15 steps, the last DPM-Solver++ step is the first-order one (= DDIM eta 0)."""
    model, schedule = mixture_model(), OffsetCosineSchedule()
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    results = {}
    for lower in (True, False):
        sampler = DPMSolverPP2M(spacing="uniform", lower_order_final=lower)
        grid = sampler.grid(schedule, num_steps)
        x, state = x_T, sampler.initial_state(grid)
        for i in range(num_steps - 1):
            out = sampler.step(model.denoise(x, *grid.rates(i)), grid, i, x, state)
            x, state = out.prev_sample, out.state
        last_step = num_steps - 1
        last = sampler.step(model.denoise(x, *grid.rates(last_step)), grid, last_step, x, state).prev_sample
        ddim = DDIMSampler(spacing="uniform")
        first_order = ddim.step(model.denoise(x, *grid.rates(last_step)), grid, last_step, x).prev_sample
        results[lower] = (last, first_order)
    torch.testing.assert_close(results[True][0], results[True][1], rtol=1e-10, atol=1e-10)
    assert float((results[False][0] - results[False][1]).abs().max()) > 1e-4  # second order differs


# ---- the global RNG is never touched when a generator is given -----------------------------------


def _run_every_sampler() -> None:
    diffusion = mixture_model()
    schedule = OffsetCosineSchedule()
    for name in ("ddim", "ddpm", "dpmpp_2m", "dpmpp_3m", "euler", "heun"):
        cls = registry.get("samplers", name)
        sampler = cls(eta=1.0) if name in ("ddim", "euler") else cls()
        x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        sampler.sample(diffusion, x, sampler.grid(schedule, 4), generator=torch.Generator().manual_seed(1))
    energy = GaussianMixtureEnergy(GaussianMixture([[0.0, 0.0]], [0.5]))
    for name in ("sgld", "ula", "mala", "hmc"):
        x = torch.zeros(16, 2, dtype=torch.float64)
        registry.get("samplers", name)(num_steps=5).sample(energy, x, generator=torch.Generator().manual_seed(2))


def test_samplers_given_a_generator_leave_the_global_rng_alone() -> None:
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    _run_every_sampler()
    assert torch.equal(torch.get_rng_state(), before)


def test_pipelines_and_buffers_given_a_generator_leave_the_global_rng_alone() -> None:
    from thermogen.buffers import ReplayBuffer
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.samplers.energy.sgld import SGLDSampler

    energy = GaussianMixtureEnergy(GaussianMixture(torch.zeros(1, 16), [0.5]), sample_shape=(1, 4, 4))
    pipe = EBMPipeline(energy, SGLDSampler(num_steps=3), ReplayBuffer(capacity=8, sample_shape=(1, 4, 4)))
    from thermogen.models.unet import UNet
    from thermogen.pipelines.diffusion import DiffusionPipeline

    diffusion = DiffusionPipeline(
        UNet(1, 8, widths=(4, 8), block_depth=1), OffsetCosineSchedule(), DDIMSampler(eta=1.0)
    )
    torch.manual_seed(99)
    before = torch.get_rng_state()
    generator = torch.Generator().manual_seed(0)
    pipe(batch_size=4, generator=generator, output_type="tensor", progress=False)
    pipe.buffer.sample(4, generator=generator)
    diffusion(batch_size=2, num_inference_steps=3, generator=generator, output_type="tensor", progress=False)
    assert torch.equal(torch.get_rng_state(), before)


def test_training_steps_leave_the_global_rng_alone(tmp_path: Path) -> None:
    """Training randomness is a function of (seed, rank, step) only: the global RNG is untouched."""
    from thermogen.buffers import ReplayBuffer
    from thermogen.models.unet import UNet
    from thermogen.normalizer import Normalizer
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.samplers.energy.sgld import SGLDSampler
    from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
    from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig

    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data = torch.utils.data.TensorDataset(images)
    model = UNet(1, 8, widths=(4, 8), block_depth=1)
    pipe = DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(), Normalizer([0.5], [0.3]))
    settings = {"steps": 2, "batch_size": 4, "log_every": 1, "checkpoint_every": 10, "sample_every": 10}
    diffusion = DiffusionTrainer(pipe, data, tmp_path / "d", DiffusionTrainingConfig(**settings))
    ebm_pipe = EBMPipeline(
        QuadraticEnergy(), SGLDSampler(num_steps=2), ReplayBuffer(capacity=8, sample_shape=(1, 2, 2))
    )
    ebm_data = torch.utils.data.TensorDataset(torch.rand(8, 1, 2, 2) * 2 - 1)
    ebm = EBMTrainer(ebm_pipe, ebm_data, tmp_path / "e", EBMTrainingConfig(**settings, langevin_steps=2))
    torch.manual_seed(5)
    before = torch.get_rng_state()
    diffusion.train_step()
    ebm.train_step()
    assert torch.equal(torch.get_rng_state(), before)


class QuadraticEnergy(EnergyModel):
    """E(x) = c |x|^2 on 1 x 2 x 2 images, with one trainable c."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (1, 2, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x.flatten(1).square().sum(1)


# ---- resuming an EBM run on a different number of processes: rank r takes buffer r mod N ------------


@pytest.fixture
def quadratic_registered():
    registry.register("models", "test_quadratic_energy")(QuadraticEnergy)
    try:
        yield
    finally:
        registry.unregister("models", "test_quadratic_energy")


@pytest.mark.parametrize(("written", "readers"), [(3, 7), (4, 2), (2, 5)])
def test_buffer_n_to_m_rule(tmp_path: Path, written: int, readers: int, quadratic_registered: None) -> None:
    from dataclasses import replace

    from thermogen.buffers import ReplayBuffer
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.samplers.energy.sgld import SGLDSampler
    from thermogen.training.checkpoint import save_checkpoint
    from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig

    def pipeline() -> EBMPipeline:
        energy = QuadraticEnergy()
        return EBMPipeline(energy, SGLDSampler(num_steps=2), ReplayBuffer(capacity=4, sample_shape=(1, 2, 2)))

    buffers = [
        {"samples": torch.full((4, 1, 2, 2), float(k)), "count": torch.tensor(4), "pointer": torch.tensor(k % 4)}
        for k in range(written)
    ]
    pipe = pipeline()
    optimizer = torch.optim.Adam(pipe.energy_model.parameters())
    state = {"step": 5, "optimizer": optimizer.state_dict(), "buffers": buffers}
    save_checkpoint(tmp_path / "checkpoint", pipe, state)
    data = torch.zeros(8, 1, 2, 2)
    dataset = torch.utils.data.TensorDataset(data)
    for rank in range(readers):
        trainer = EBMTrainer(pipeline(), dataset, tmp_path, EBMTrainingConfig(batch_size=2, langevin_steps=1))
        trainer.context = replace(trainer.context, rank=rank)
        trainer.load_checkpoint()
        expected = rank % written
        assert torch.equal(trainer.buffer.storage, torch.full((4, 1, 2, 2), float(expected))), (rank, expected)
        assert trainer.buffer.pointer == expected % 4 and trainer.step == 5
