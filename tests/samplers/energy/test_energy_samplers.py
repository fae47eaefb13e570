"""Energy samplers against ground truth: the book's SGLD update exactly, reference loops of MALA and HMC, closed-form
stationary laws, an analytic 2-D Gaussian mixture, configs and argument checks."""

from __future__ import annotations

import math

import pytest
import torch
from energy_helpers import Quadratic, seeded, tiny_cnn, uniform_images

from thermogen.errors import ConfigError
from thermogen.interfaces import Sampler
from thermogen.samplers import STOP
from thermogen.samplers.energy.hmc import HMCSampler
from thermogen.samplers.energy.mala import MALASampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.samplers.energy.ula import ULASampler
from thermogen.testing import GaussianMixture, GaussianMixtureEnergy, conformance

BOOK_SNAPSHOTS = [0, 1, 3, 5, 10, 30, 50, 100, 300, 999]


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see tests/conftest.py


# ----------------------------------------------------------------------------------------
# SGLD: the book's update, exactly


def book_langevin_reference(
    f,
    x: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    step_size: float = 10.0,
    noise: float = 0.005,
    grad_clip: float | None = 0.03,
    clip: tuple[float, float] | None = (-1.0, 1.0),
    noise_scales: list[float] | None = None,
) -> list[torch.Tensor]:
    """The book's ``generate_samples`` on the output f = -E: every state after each step."""
    states = []
    for i in range(steps):
        scale = 1.0 if noise_scales is None else noise_scales[i]
        x = x + noise * scale * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        if clip is not None:
            x = torch.clamp(x, *clip)
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(f(x).sum(), x)
        if grad_clip is not None:
            grad = torch.clamp(grad, -grad_clip, grad_clip)
        x = x.detach() + step_size * grad
        if clip is not None:
            x = torch.clamp(x, *clip)
        states.append(x)
    return states


def test_sgld_matches_the_books_update_exactly_on_a_tiny_cnn() -> None:
    model = tiny_cnn()
    x0 = uniform_images(6, 8, seed=1)
    ref = book_langevin_reference(model.negative_energy, x0, 20, torch.Generator().manual_seed(7))
    out = SGLDSampler().sample(model, x0, num_steps=20, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(out.sample, ref[-1], rtol=0, atol=1e-12)
    assert not torch.equal(out.sample, x0)


@pytest.mark.parametrize(("grad_clip", "clip"), [(None, None), (0.5, (-0.3, 2.0))])
def test_sgld_book_form_knobs_match_the_reference(grad_clip, clip) -> None:
    model = Quadratic(dims=3)
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sampler = SGLDSampler(step_size=0.2, noise_std=0.1, grad_clip=grad_clip, sample_clip=clip)
    ref = book_langevin_reference(
        lambda x: -model(x), x0, 15, torch.Generator().manual_seed(3), 0.2, 0.1, grad_clip, clip
    )
    out = sampler.sample(model, x0, num_steps=15, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.sample, ref[-1], rtol=0, atol=1e-12)


def test_sgld_annealing_decays_the_noise_geometrically() -> None:
    model = Quadratic(dims=2)
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    sampler = SGLDSampler(step_size=0.1, noise_std=0.5, sample_clip=None, final_noise_scale=0.01)
    scales = [0.01 ** (i / 9) for i in range(10)]
    ref = book_langevin_reference(
        lambda x: -model(x), x0, 10, torch.Generator().manual_seed(1), 0.1, 0.5, 0.03, None, scales
    )
    out = sampler.sample(model, x0, num_steps=10, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.sample, ref[-1], rtol=0, atol=1e-12)
    with pytest.raises(TypeError, match=r"SGLDSampler.step got state None; expected the ChainPosition"):
        SGLDSampler(final_noise_scale=0.5).step(model, x0, None)


def test_ula_is_unadjusted_langevin() -> None:
    model = Quadratic(dims=2)
    x0 = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eta, temp = 0.05, 0.5
    g = torch.Generator().manual_seed(2)
    x = x0
    for _ in range(5):  # x <- x - eta grad E + sqrt(2 eta T) xi; grad E = x - center
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        x = x - eta * (x - model.center.detach()) + math.sqrt(2 * eta * temp) * xi
    sampler = ULASampler(step_size=eta, temperature=temp)
    out = sampler.sample(model, x0, num_steps=5, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-12)


def test_snapshots_at_the_books_steps_are_the_states_after_those_steps() -> None:
    mixture = GaussianMixture([[0.3, -0.2]], [0.4])
    model = GaussianMixtureEnergy(mixture).double()
    x0 = torch.rand(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    sampler = SGLDSampler(step_size=0.01, noise_std=0.05)
    g = torch.Generator().manual_seed(4)
    out = sampler.sample(model, x0, num_steps=1000, generator=g, snapshot_steps=BOOK_SNAPSHOTS)
    assert out.snapshots is not None and out.snapshots.shape == (10, 3, 2)
    assert out.snapshot_steps == BOOK_SNAPSHOTS
    g, x, states = torch.Generator().manual_seed(4), x0, []
    with sampler.frozen(model):
        state = sampler.initial_state(model, x, 1000)
        for _ in range(1000):
            step = sampler.step(model, x, state, generator=g)
            x, state = step.sample, step.state
            states.append(x)
    torch.testing.assert_close(out.snapshots, torch.stack([states[i] for i in BOOK_SNAPSHOTS]), rtol=0, atol=0)
    torch.testing.assert_close(out.sample, states[-1], rtol=0, atol=0)


def test_step_does_not_modify_its_input() -> None:
    model = tiny_cnn()
    x = uniform_images(2, 8, seed=0)
    before = x.clone()
    sampler = SGLDSampler()
    sampler.step(model, x, sampler.initial_state(model, x, 1), generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


@pytest.mark.parametrize("sampler", [SGLDSampler(), ULASampler(), MALASampler(), HMCSampler(num_leapfrog_steps=2)])
def test_requires_grad_and_mode_are_restored_also_after_an_exception(sampler: Sampler) -> None:
    model = tiny_cnn(torch.float32)
    model.convs[0].weight.requires_grad_(False)  # a mixed set of flags
    model.train()
    flags = [p.requires_grad for p in model.parameters()]
    seen: list[tuple[bool, bool]] = []

    def spy(info):
        seen.append((model.training, any(p.requires_grad for p in model.parameters())))
        return STOP if info.step == 1 else None

    x0 = uniform_images(2, 8, seed=0, dtype=torch.float32)
    sampler.sample(model, x0, num_steps=5, callback=spy)
    assert seen == [(False, False), (False, False)]
    assert [p.requires_grad for p in model.parameters()] == flags and model.training

    def boom(info):
        raise KeyError("callback failed")

    with pytest.raises(KeyError, match="callback failed"):
        sampler.sample(model, x0, num_steps=5, callback=boom)
    assert [p.requires_grad for p in model.parameters()] == flags and model.training


# ----------------------------------------------------------------------------------------
# MALA and HMC: exact reference loops


def test_mala_matches_the_metropolis_adjusted_langevin_equations() -> None:
    mixture = GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], [0.5, 0.7], [0.4, 0.6])
    model = GaussianMixtureEnergy(mixture).double()
    eta, temp = 0.3, 1.5
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g, x, accepted = torch.Generator().manual_seed(5), x0, []
    for _ in range(8):
        e, s = model.energy_and_score(x)
        xi = torch.randn(x.shape, generator=g, dtype=x.dtype)
        y = x + eta * s + math.sqrt(2 * eta * temp) * xi
        e_y, s_y = model.energy_and_score(y)
        log_q_fwd = -((y - x - eta * s) ** 2).sum(1) / (4 * eta * temp)
        log_q_bwd = -((x - y - eta * s_y) ** 2).sum(1) / (4 * eta * temp)
        log_a = (e - e_y) / temp + log_q_bwd - log_q_fwd
        accept = torch.log(torch.rand(50, generator=g, dtype=x.dtype)) < log_a
        x = torch.where(accept[:, None], y, x)
        accepted.append(accept.double().mean())
    sampler = MALASampler(step_size=eta, temperature=temp)
    out = sampler.sample(model, x0, num_steps=8, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-12)
    assert out.acceptance_rate == pytest.approx(float(torch.stack(accepted).mean()), abs=1e-12)
    assert 0.05 < out.acceptance_rate < 0.99


def test_hmc_matches_the_leapfrog_metropolis_equations() -> None:
    mixture = GaussianMixture([[-1.0, 0.0], [1.0, 0.5]], [0.5, 0.7], [0.4, 0.6])
    model = GaussianMixtureEnergy(mixture).double()
    eps, steps_l, temp = 0.4, 3, 0.8
    x0 = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g, x, accepted = torch.Generator().manual_seed(6), x0, []
    for _ in range(6):
        e0, _ = model.energy_and_score(x)
        p0 = torch.randn(x.shape, generator=g, dtype=x.dtype)
        q, p = x, p0
        for _ in range(steps_l):  # textbook leapfrog: half kick, drift, half kick
            p = p + 0.5 * eps * model.energy_and_score(q)[1] / temp
            q = q + eps * p
            p = p + 0.5 * eps * model.energy_and_score(q)[1] / temp
        e1 = model.energy_and_score(q)[0]
        log_a = (e0 / temp + 0.5 * (p0**2).sum(1)) - (e1 / temp + 0.5 * (p**2).sum(1))
        accept = torch.log(torch.rand(50, generator=g, dtype=x.dtype)) < log_a
        x = torch.where(accept[:, None], q, x)
        accepted.append(accept.double().mean())
    sampler = HMCSampler(step_size=eps, num_leapfrog_steps=steps_l, temperature=temp)
    out = sampler.sample(model, x0, num_steps=6, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(out.sample, x, rtol=0, atol=1e-12)
    assert out.acceptance_rate == pytest.approx(float(torch.stack(accepted).mean()), abs=1e-12)


class CountingEnergy(GaussianMixtureEnergy):
    calls = 0

    def energy_and_score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        type(self).calls += 1
        return super().energy_and_score(x)


def test_one_energy_and_score_per_proposal_and_per_leapfrog_step() -> None:
    model = CountingEnergy(GaussianMixture([[0.0, 0.0]], [1.0])).double()
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    CountingEnergy.calls = 0
    MALASampler().sample(model, x0, num_steps=10)
    assert CountingEnergy.calls == 1 + 10
    CountingEnergy.calls = 0
    HMCSampler(num_leapfrog_steps=3).sample(model, x0, num_steps=10)
    assert CountingEnergy.calls == 1 + 10 * 3


def test_metropolis_corrects_the_step_size_bias_of_unadjusted_langevin() -> None:
    """On N(0, 1) with eta = 0.5, ULA's stationary variance is 1 / (1 - eta / 2) = 4/3; MALA's and HMC's is 1."""
    model = GaussianMixtureEnergy(GaussianMixture([[0.0]], [1.0])).double()
    x0 = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ula = ULASampler(step_size=0.5).sample(model, x0, num_steps=60, generator=seeded(1))
    mala = MALASampler(step_size=0.5).sample(model, x0, num_steps=60, generator=seeded(1))
    hmc = HMCSampler(step_size=1.2, num_leapfrog_steps=3).sample(model, x0, num_steps=30, generator=seeded(1))
    # the variance estimate of 4000 chains has a standard error of about 0.03 (0.04 for 4/3)
    assert ula.sample.var().item() == pytest.approx(4 / 3, abs=0.12)
    assert mala.sample.var().item() == pytest.approx(1.0, abs=0.09)
    assert hmc.sample.var().item() == pytest.approx(1.0, abs=0.09)
    assert 0.6 < mala.acceptance_rate < 0.99 and 0.5 < hmc.acceptance_rate < 0.99


# ----------------------------------------------------------------------------------------
# Ground truth: a 2-D Gaussian mixture, every chain started in one mode (the conformance kit's check)


@pytest.mark.parametrize(
    ("sampler", "steps"),
    [
        (ULASampler(step_size=0.05), 400),
        (MALASampler(step_size=0.15), 400),
        (HMCSampler(step_size=0.3, num_leapfrog_steps=5), 60),
    ],
    ids=["ula", "mala", "hmc"],
)
def test_samplers_recover_a_2d_gaussian_mixture(sampler: Sampler, steps: int) -> None:
    """4,000 chains: label shares, per-mode means and stds within 0.02 beyond sampling error (power to reject
    weights (0.45, 0.33, 0.22) and means shrunk 10 %: tests/testing/test_statistical_power.py); acceptance in
    (0.5, 0.999)."""
    conformance.energy_samplers.check_recovers_mixture(sampler, steps, bias=0.02)


# ----------------------------------------------------------------------------------------
# Sampler configs


@pytest.mark.parametrize(
    ("name", "sampler"),
    [
        ("sgld", SGLDSampler(num_steps=30, sample_clip=(-2.0, 2.0), final_noise_scale=0.5)),
        ("sgld", SGLDSampler(grad_clip=None, sample_clip=None)),
        ("ula", ULASampler(temperature=0.5, final_noise_scale=0.1)),
        ("mala", MALASampler(step_size=0.2)),
        ("hmc", HMCSampler(num_leapfrog_steps=4)),
    ],
)
def test_sampler_config_round_trip(name: str, sampler: Sampler) -> None:
    config = sampler.to_config()
    assert config["_class_name"] == name
    rebuilt = Sampler.from_config(config)
    assert type(rebuilt) is type(sampler) and rebuilt.config == sampler.config
    assert vars(rebuilt).get("sample_clip") == vars(sampler).get("sample_clip")


def test_sgld_defaults_are_the_books() -> None:
    assert SGLDSampler().config == {
        "num_steps": 60,
        "step_size": 10.0,
        "noise_std": 0.005,
        "grad_clip": 0.03,
        "sample_clip": [-1.0, 1.0],
        "final_noise_scale": 1.0,
    }


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SGLDSampler(num_steps=0), "num_steps=0"),
        (lambda: SGLDSampler(step_size=0.0), "step_size=0.0"),
        (lambda: SGLDSampler(noise_std=-1.0), "noise_std=-1.0"),
        (lambda: SGLDSampler(grad_clip=0.0), "grad_clip=0.0"),
        (lambda: SGLDSampler(sample_clip=(1.0, -1.0)), r"sample_clip=\(1.0, -1.0\)"),
        (lambda: SGLDSampler(final_noise_scale=0.0), "final_noise_scale=0.0"),
        (lambda: ULASampler(step_size=0.0), "step_size=0.0"),
        (lambda: ULASampler(temperature=0.0), "temperature=0.0"),
        (lambda: ULASampler(final_noise_scale=-1.0), "final_noise_scale=-1.0"),
        (lambda: MALASampler(step_size=-0.1), "step_size=-0.1"),
        (lambda: HMCSampler(num_leapfrog_steps=0), "num_leapfrog_steps=0"),
    ],
)
def test_sampler_bad_arguments(build, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()
