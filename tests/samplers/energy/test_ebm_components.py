"""EBM components: the book's energy CNN, Langevin / MALA / HMC samplers, the replay buffer.

Ground truth: the book's network rebuilt from the same weights, autograd
gradients, reference loops written from the book's and the papers' update
equations with the same random draws, closed-form stationary variances, an
analytic 2-D Gaussian mixture, and save / load round trips.
"""

from __future__ import annotations

import math

import pytest
import torch
from statistical_rules import fraction_mismatch, uniform_counts_mismatch
from torch import nn

from thermogen import registry
from thermogen.buffers import ReplayBuffer
from thermogen.errors import CheckpointError, ConfigError
from thermogen.interfaces import EnergyModel, Sampler
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.samplers import STOP
from thermogen.samplers.energy.hmc import HMCSampler
from thermogen.samplers.energy.mala import MALASampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.samplers.energy.ula import ULASampler
from thermogen.testing import GaussianMixture, GaussianMixtureEnergy, conformance

BOOK_SNAPSHOTS = [0, 1, 3, 5, 10, 30, 50, 100, 300, 999]


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread avoids OpenMP wake-ups (softmax on a (B, 3) tensor costs ~15 ms with 2
    threads on a busy machine, 0.3 ms with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_cnn(dtype: torch.dtype = torch.float64, seed: int = 0) -> EnergyCNN:
    torch.manual_seed(seed)
    return EnergyCNN(in_channels=1, image_size=8, widths=(3, 4), hidden=5).to(dtype)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def uniform_images(n: int, size: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


class Quadratic(EnergyModel):
    """E(x) = |x - c|^2 / 2 per sample, through the default (autograd) energy_and_score."""

    def __init__(self, dims: int = 2) -> None:
        super().__init__()
        self.center = nn.Parameter(torch.linspace(-0.5, 0.5, dims, dtype=torch.float64))

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.center.shape[0],)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x.reshape(x.shape[0], -1) - self.center).square().sum(1)


# ----------------------------------------------------------------------------------------
# EnergyCNN


def book_network(model: EnergyCNN) -> nn.Sequential:
    """The book's Keras network, layer for layer, carrying ``model``'s weights; outputs f = -E."""
    convs = [
        nn.Conv2d(1, 16, 5, 2, 2),
        nn.Conv2d(16, 32, 3, 2, 1),
        nn.Conv2d(32, 64, 3, 2, 1),
        nn.Conv2d(64, 64, 3, 2, 1),
    ]
    net = nn.Sequential(
        convs[0],
        nn.SiLU(),
        convs[1],
        nn.SiLU(),
        convs[2],
        nn.SiLU(),
        convs[3],
        nn.SiLU(),
        nn.Flatten(),
        nn.Linear(256, 64),
        nn.SiLU(),
        nn.Linear(64, 1),
    )
    with torch.no_grad():
        for mine, theirs in zip(model.convs, convs):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        net[9].weight.copy_(model.dense.weight)
        net[9].bias.copy_(model.dense.bias)
        net[11].weight.copy_(model.out.weight)
        net[11].bias.copy_(model.out.bias)
    return net


def test_energy_cnn_has_the_books_76993_parameters_and_layer_sizes() -> None:
    model = EnergyCNN()
    assert sum(p.numel() for p in model.parameters()) == 76_993
    shapes = [tuple(c.weight.shape) for c in model.convs]
    assert shapes == [(16, 1, 5, 5), (32, 16, 3, 3), (64, 32, 3, 3), (64, 64, 3, 3)]
    assert tuple(model.dense.weight.shape) == (64, 256) and tuple(model.out.weight.shape) == (1, 64)
    h = torch.zeros(2, 1, 32, 32)
    sizes = []
    for conv in model.convs:
        h = conv(h)
        sizes.append(h.shape[-1])
    assert sizes == [16, 8, 4, 2]
    assert model(torch.zeros(3, 1, 32, 32)).shape == (3,)


def test_energy_is_minus_the_book_networks_output() -> None:
    torch.manual_seed(0)
    model = EnergyCNN()
    x = uniform_images(4, 32, seed=1, dtype=torch.float32)
    f = book_network(model)(x).squeeze(1)
    torch.testing.assert_close(model.negative_energy(x), f)
    torch.testing.assert_close(model(x), -f)


def test_sign_convention_on_a_hand_made_model() -> None:
    model = tiny_cnn()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.out.bias.fill_(3.0)  # the book's output f = 3 everywhere
    x = uniform_images(2, 8, seed=0)
    assert model.negative_energy(x).tolist() == [3.0, 3.0]
    assert model(x).tolist() == [-3.0, -3.0]


def test_weights_start_like_keras_glorot_uniform_with_zero_biases() -> None:
    model = EnergyCNN()
    for layer in [*model.convs, model.dense, model.out]:
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        assert layer.weight.abs().max() <= math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0
    a, b = EnergyCNN(), EnergyCNN()
    a.reset_parameters(torch.Generator().manual_seed(5))
    b.reset_parameters(torch.Generator().manual_seed(5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize(
    ("kwargs", "dtype"),
    [
        ({}, torch.float64),
        ({}, torch.float32),
        ({"in_channels": 3, "image_size": 17, "widths": (4, 6, 5), "hidden": 7}, torch.float64),
        ({"image_size": 9, "widths": (3,), "hidden": 2}, torch.float64),
    ],
)
def test_hand_written_energy_and_score_equals_autograd(kwargs: dict, dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    model = EnergyCNN(**kwargs).to(dtype)
    with torch.no_grad():  # non-zero biases, so every term of the backward pass is exercised
        for layer in [*model.convs, model.dense, model.out]:
            layer.bias.normal_(0.0, 0.3)
    x = torch.rand(5, model.in_channels, model.image_size, model.image_size, dtype=dtype) * 2 - 1
    energy, score = model.energy_and_score(x)
    ref_energy, ref_score = EnergyModel.energy_and_score(model, x)  # the generic autograd path
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 1e-6}
    torch.testing.assert_close(energy, ref_energy, **tol)
    torch.testing.assert_close(score, ref_score, **tol)
    assert score.shape == x.shape and not score.requires_grad and not energy.requires_grad


def test_energy_cnn_input_shape_errors_name_the_mismatch() -> None:
    model = EnergyCNN()
    with pytest.raises(ValueError, match="image has 3 channels, model expects 1"):
        model(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="image is 28x28, model expects 32x32"):
        model.energy_and_score(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"shape \(1, 32, 32\); expected \(B, 1, 32, 32\)"):
        model(torch.zeros(1, 32, 32))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 0}, "in_channels=0"),
        ({"image_size": 0}, "image_size=0"),
        ({"widths": ()}, r"widths=\[\]"),
        ({"widths": (16, 0)}, r"widths=\[16, 0\]"),
        ({"hidden": -1}, "hidden=-1"),
    ],
)
def test_energy_cnn_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnergyCNN(**kwargs)


def test_energy_cnn_save_load_round_trip(tmp_path) -> None:
    model = EnergyCNN(image_size=16, widths=(4, 8), hidden=6)
    model.save_pretrained(tmp_path / "ebm")
    loaded = EnergyModel.from_pretrained(tmp_path / "ebm")
    assert isinstance(loaded, EnergyCNN) and loaded.to_config()["_class_name"] == "energy_cnn"
    assert loaded.config == {"in_channels": 1, "image_size": 16, "widths": [4, 8], "hidden": 6}
    x = uniform_images(3, 16, seed=0, dtype=torch.float32)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


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


# ----------------------------------------------------------------------------------------
# ReplayBuffer


def filled(capacity: int, n: int, shape: tuple[int, ...] = (1, 2, 2), **kwargs) -> ReplayBuffer:
    """A buffer holding samples whose every value is their push order 0..n-1."""
    buffer = ReplayBuffer(capacity=capacity, sample_shape=shape, **kwargs)
    buffer.push(torch.arange(n, dtype=torch.float32).view(n, *[1] * len(shape)).expand(n, *shape))
    return buffer


def ids(x: torch.Tensor) -> list[int]:
    return [int(v) for v in x.reshape(x.shape[0], -1)[:, 0]]


def test_buffer_reinitialises_about_5_percent_from_fresh_uniform_noise() -> None:
    """Restarts are Binomial(25,600, 0.05); the rule rejects rates of 7 %, 3 %, 6 % and 4 %
    (tests/testing/test_statistical_power.py)."""
    buffer = filled(256, 256, shape=(1, 4, 4))
    g = torch.Generator().manual_seed(0)
    fresh_rows, total = 0, 0
    for _ in range(200):
        x, indices = buffer.sample(128, g)
        restart = indices == -1
        fresh_rows += int(restart.sum())
        total += 128
        # fresh rows are U(-1, 1) noise, the others exactly the stored sample at their index
        assert bool((x[restart].abs() <= 1).all())
        stored = ~restart
        torch.testing.assert_close(x[stored], buffer.storage[indices[stored]], rtol=0, atol=0)
    problem = fraction_mismatch(fresh_rows, total, 0.05)
    assert problem is None, problem


def test_buffer_draws_uniformly_with_replacement() -> None:
    """12,800 draws over 16 slots, after a wrap (slot order is not age order): chi-square of the
    slot counts. The rule rejects draws biased towards recent slots (newest 1.5x as likely as the
    oldest), a slot never drawn and one slot drawn twice as often (tests/testing/test_statistical_power.py)."""
    buffer = filled(16, 16, reinit_prob=0.0)
    buffer.push(torch.arange(16, 24, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 2, 2))
    assert buffer.pointer == 8
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(16)
    for _ in range(200):
        x, indices = buffer.sample(64, g)
        torch.testing.assert_close(x, buffer.storage[indices], rtol=0, atol=0)
        counts += torch.bincount(indices, minlength=16)
    assert counts.sum() == 12800
    problem = uniform_counts_mismatch(counts)
    assert problem is None, problem
    small = filled(4, 4, reinit_prob=0.0)
    assert sorted(set(small.sample(64, g)[1].tolist())) == [0, 1, 2, 3]  # 64 draws from 4 samples: with replacement


def test_buffer_push_overwrites_the_oldest_and_truncates_to_capacity() -> None:
    buffer = filled(5, 3)
    buffer.push(torch.arange(3, 7, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 1, 2, 2))
    assert len(buffer) == 5
    assert sorted(ids(buffer.storage)) == [2, 3, 4, 5, 6]  # 0 and 1, the oldest, were dropped
    buffer.push(torch.arange(10, 17, dtype=torch.float32).view(7, 1, 1, 1).expand(7, 1, 2, 2))
    assert sorted(ids(buffer.storage)) == [10, 11, 12, 13, 14]  # the book keeps a big batch's first rows


def test_buffer_is_first_in_first_out_across_the_wrap() -> None:
    """Pushing one row at a time past capacity drops exactly the oldest row each time."""
    buffer = ReplayBuffer(capacity=3, reinit_prob=0.0, sample_shape=(1, 1, 1))
    for i in range(8):
        buffer.push(torch.full((1, 1, 1, 1), float(i)))
        assert sorted(buffer.storage[: len(buffer)].flatten().tolist()) == list(range(max(0, i - 2), i + 1)), i
        assert buffer.pointer == (i + 1) % 3
    buffer.push(torch.tensor([10.0, 11.0]).view(2, 1, 1, 1))  # a batch across the wrap: rows 2 and 0
    assert buffer.storage.flatten().tolist() == [11.0, 7.0, 10.0] and buffer.pointer == 1


def test_buffer_starts_with_a_batch_of_uniform_images_like_the_book() -> None:
    buffer = ReplayBuffer(capacity=100, reinit_prob=0.0, sample_shape=(1, 8, 8))
    x, indices = buffer.sample(16, torch.Generator().manual_seed(0))
    assert len(buffer) == 16 and x.shape == (16, 1, 8, 8)
    assert bool((x.abs() <= 1).all()) and x.std() > 0.5  # U(-1, 1): std 0.577
    torch.testing.assert_close(x, buffer.storage[indices], rtol=0, atol=0)


def test_buffer_gaussian_init_and_custom_initializer() -> None:
    g = torch.Generator().manual_seed(0)
    gaussian = ReplayBuffer(sample_shape=(1, 32, 32), init="gaussian").fresh(64, g)
    assert gaussian.std().item() == pytest.approx(1.0, abs=0.03) and gaussian.abs().max() > 1
    buffer = ReplayBuffer(capacity=10, reinit_prob=1.0, sample_shape=(2,))
    buffer.set_initializer(lambda n, generator: torch.full((n, 2), 7.0))
    x, indices = buffer.sample(3, g)
    assert torch.equal(x, torch.full((3, 2), 7.0)) and indices.tolist() == [-1, -1, -1]
    buffer.set_initializer(lambda n, generator: torch.zeros(n, 3))
    with pytest.raises(ValueError, match=r"initializer returned shape \(3, 3\); expected \(3, 2\)"):
        buffer.sample(3, g)


def test_buffer_save_load_round_trip_resumes_identically(tmp_path) -> None:
    buffer = ReplayBuffer(capacity=6, reinit_prob=0.3, sample_shape=(1, 2, 2))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # wrap the ring: the write pointer is mid-buffer
        x, _ = buffer.sample(4, g)
        buffer.push(x + 0.5)
    assert len(buffer) == 6 and buffer.pointer != 0
    buffer.save_pretrained(tmp_path / "buffer")
    loaded = ReplayBuffer.from_pretrained(tmp_path / "buffer")
    assert loaded.to_config() == buffer.to_config() and loaded.sample_shape == (1, 2, 2)
    assert (loaded.count, loaded.pointer) == (buffer.count, buffer.pointer)
    torch.testing.assert_close(loaded.storage, buffer.storage, rtol=0, atol=0)
    state = torch.get_rng_state()
    a = buffer.sample(5, torch.Generator().manual_seed(3))
    b = loaded.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched


def test_buffer_config_round_trip_and_registry_name() -> None:
    buffer = ReplayBuffer(capacity=10, reinit_prob=0.1, sample_shape=(3, 4, 4), init="gaussian")
    config = buffer.to_config()
    assert config["_class_name"] == "replay_buffer" and config["sample_shape"] == [3, 4, 4]
    assert registry.get("components", "replay_buffer") is ReplayBuffer
    rebuilt = ReplayBuffer.from_config(config)
    assert rebuilt.config == buffer.config and rebuilt.storage.shape == (10, 3, 4, 4)


def test_partly_filled_and_empty_buffers_save_and_load(tmp_path) -> None:
    for n in (0, 3):
        buffer = filled(8, n) if n else ReplayBuffer(capacity=8, sample_shape=(1, 2, 2))
        buffer.save_pretrained(tmp_path / f"b{n}")
        loaded = ReplayBuffer.from_pretrained(tmp_path / f"b{n}")
        assert (loaded.count, loaded.pointer) == (n, n)
        torch.testing.assert_close(loaded.storage[:n], buffer.storage[:n], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity": 0}, "capacity=0"),
        ({"reinit_prob": 1.5}, "reinit_prob=1.5"),
        ({"sample_shape": ()}, r"sample_shape=\[\]"),
        ({"sample_shape": (1, 0)}, r"sample_shape=\[1, 0\]"),
        ({"init": "sobol"}, "init='sobol'"),
    ],
)
def test_buffer_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReplayBuffer(**kwargs)


def test_buffer_bad_calls_and_bad_state() -> None:
    buffer = filled(4, 2)
    with pytest.raises(ValueError, match=r"pushed samples have shape \(2, 1, 3, 3\); expected \(n, 1, 2, 2\)"):
        buffer.push(torch.zeros(2, 1, 3, 3))
    with pytest.raises(ValueError, match="batch_size=0"):
        buffer.sample(0)
    state = buffer.state_tensors()
    with pytest.raises(CheckpointError, match="expected"):
        buffer.load_state_tensors({"samples": state["samples"]})
    with pytest.raises(CheckpointError, match="expected"):
        buffer.load_state_tensors({**state, "samples": torch.zeros(2, 1, 3, 3)})
    with pytest.raises(CheckpointError, match="capacity 4"):
        buffer.load_state_tensors({**state, "pointer": torch.tensor(3)})
    assert buffer.to("cpu") is buffer and buffer.device.type == "cpu"
