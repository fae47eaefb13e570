"""Noise schedules: properties of every registered schedule, then exact values per schedule.

Reference values marked "diffusers" were computed once with diffusers 0.42.1
(``DDPMScheduler(...).betas`` / ``.alphas_cumprod``, float32); the tests do not
import diffusers.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch

import thermogen
from thermogen import registry
from thermogen.diffusers_interop import schedule_from_diffusers_config
from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule
from thermogen.schedules import (
    CosineSchedule,
    DiscreteSchedule,
    ImprovedCosineSchedule,
    LinearSchedule,
    OffsetCosineSchedule,
    ScaledLinearSchedule,
)
from thermogen.testing import conformance

F64 = torch.float64
NAMES = registry.names("schedules")
_BUILT: dict[str, NoiseSchedule] = {}


def build(name: str) -> NoiseSchedule:
    """A registered schedule with its default config (cached: discrete ones build tables)."""
    if name not in _BUILT:
        _BUILT[name] = registry.get("schedules", name)()
    return _BUILT[name]


def test_builtins_are_registered() -> None:
    assert {"linear", "scaled_linear", "cosine", "offset_cosine", "improved_cosine"} <= set(NAMES)


# ----------------------------------------------------------------------------
# Properties of every registered schedule (plugins included): the conformance kit's checks


@pytest.mark.parametrize("check", conformance.schedules.CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("name", NAMES)
def test_every_registered_schedule_conforms(name: str, check) -> None:
    """Rates in [0, 1], variance preserving, monotone, finite at the ends, dtypes, per-sample times, log-SNR
    inverse, config and save/load round trips, add_noise statistics (thermogen.testing.conformance.schedules)."""
    assert check(build(name)).verdict == "pass"


# ----------------------------------------------------------------------------
# The book's continuous schedules


def test_cosine_closed_form() -> None:
    t = torch.linspace(0, 1, 101, dtype=F64)
    signal, noise = CosineSchedule().rates(t)
    torch.testing.assert_close(signal, torch.cos(t * math.pi / 2), rtol=0, atol=1e-15)
    torch.testing.assert_close(noise, torch.sin(t * math.pi / 2), rtol=0, atol=1e-15)
    torch.testing.assert_close(CosineSchedule().log_snr(t[1:-1]), 2 * torch.log(1 / torch.tan(t[1:-1] * math.pi / 2)))


def test_offset_cosine_ends_and_angle() -> None:
    schedule = OffsetCosineSchedule()
    assert float(schedule.signal_rate(0.0)) == pytest.approx(0.95, abs=1e-15)
    assert float(schedule.signal_rate(1.0)) == pytest.approx(0.02, abs=1e-15)
    assert float(schedule.noise_rate(0.0)) == pytest.approx(math.sqrt(1 - 0.95**2), abs=1e-15)
    start, end = math.acos(0.95), math.acos(0.02)
    t = torch.linspace(0, 1, 11, dtype=F64)
    torch.testing.assert_close(schedule.signal_rate(t), torch.cos(start + t * (end - start)), rtol=0, atol=1e-15)


def test_offset_cosine_rejects_bad_rates() -> None:
    with pytest.raises(ValueError, match="min_signal_rate"):
        OffsetCosineSchedule(max_signal_rate=0.5, min_signal_rate=0.6)


# ----------------------------------------------------------------------------
# Discrete schedules: the time axis and the interpolation

DISCRETE = [
    LinearSchedule(),
    ScaledLinearSchedule(),
    ImprovedCosineSchedule(),
    LinearSchedule(num_train_timesteps=10, rescale_betas_zero_snr=True),
    ImprovedCosineSchedule(num_train_timesteps=50, rescale_betas_zero_snr=True),
]


@pytest.mark.parametrize("schedule", DISCRETE, ids=repr)
def test_knots_equal_the_cumulative_product(schedule: DiscreteSchedule) -> None:
    steps = schedule.num_train_timesteps
    betas = schedule.betas
    assert betas.dtype == schedule.alphas_cumprod.dtype == F64 and betas.shape == (steps,)
    expected = torch.cumprod(1 - betas, dim=0)
    torch.testing.assert_close(schedule.alphas_cumprod, expected, rtol=0, atol=0)
    knots = schedule.timestep_to_time(torch.arange(steps))
    torch.testing.assert_close(knots, torch.arange(1, steps + 1, dtype=F64) / steps)
    torch.testing.assert_close(schedule.alpha_bar(knots), expected, rtol=0, atol=1e-12)
    for i in (0, steps // 3, steps - 1):
        assert float(schedule.alpha_bar((i + 1) / steps)) == pytest.approx(float(expected[i]), abs=1e-12)
    assert float(schedule.alpha_bar(0.0)) == 1.0
    assert float(schedule.noise_rate(0.0)) == 0.0


@pytest.mark.parametrize("schedule", DISCRETE[:3], ids=repr)
def test_log_alpha_bar_is_linear_between_knots(schedule: DiscreteSchedule) -> None:
    steps = schedule.num_train_timesteps
    knots = torch.cat([torch.zeros(1, dtype=F64), torch.log(schedule.alphas_cumprod)])
    k = torch.arange(steps, dtype=F64)
    for frac in (0.25, 0.5, 0.9):
        got = torch.log(schedule.alpha_bar((k + frac) / steps))
        torch.testing.assert_close(got, (1 - frac) * knots[:-1] + frac * knots[1:], rtol=1e-12, atol=1e-13)


def test_the_returned_tables_are_copies() -> None:
    schedule = LinearSchedule()
    schedule.betas.zero_()
    schedule.alphas_cumprod.zero_()
    assert float(schedule.betas[0]) == 1e-4 and float(schedule.alpha_bar(1.0)) > 0


def test_times_outside_the_unit_interval() -> None:
    schedule = LinearSchedule()
    with pytest.raises(ValueError, match="outside"):
        schedule.rates(1.5)
    with pytest.raises(ValueError, match=r"diffusion time t has 2 values outside \[0.0, 1.0\] \(e.g. -0.5\)"):
        schedule.rates(torch.tensor([-0.5, 0.5, 1.5], dtype=F64))


@pytest.mark.parametrize("name", ["linear", "cosine", "offset_cosine", "improved_cosine", "scaled_linear"])
def test_nan_tensor_time_is_refused_by_every_schedule(name: str) -> None:
    schedule = registry.get("schedules", name)()
    with pytest.raises(ValueError, match="outside"):
        schedule.noise_rate(torch.tensor([0.5, float("nan")]))
    with pytest.raises(TypeError, match="complex"):
        schedule.noise_rate(torch.tensor([0.5j]))


# ----------------------------------------------------------------------------
# Linear and scaled linear: betas and diffusers reference values

# diffusers: alphas_cumprod[i] for i in (0, 1, 2, 10, 100, 500, 900, 998, 999), float32.
REF_INDICES = [0, 1, 2, 10, 100, 500, 900, 998, 999]
LINEAR_ALPHAS_CUMPROD = [
    0.9998999834060669, 0.9997800588607788, 0.9996402859687805, 0.9978064894676208, 0.8951413631439209,
    0.07779665291309357, 0.0002702444908209145, 4.118194192415103e-05, 4.035830352222547e-05,
]  # fmt: skip
SCALED_LINEAR_ALPHAS_CUMPROD = [
    0.9991499781608582, 0.9982960224151611, 0.9974380731582642, 0.9904313087463379, 0.894223153591156,
    0.27633246779441833, 0.01415113266557455, 0.004716695751994848, 0.00466009508818388,
]  # fmt: skip
LINEAR_ZERO_SNR_ALPHAS_CUMPROD = [
    0.9998999834060669, 0.9997793436050415, 0.9996386170387268, 0.9977930188179016, 0.8944903612136841,
    0.07524619996547699, 0.00010303845192538574, 4.2132741739919766e-09, 0.0,
]  # fmt: skip


def test_linear_betas() -> None:
    betas = LinearSchedule().betas
    assert float(betas[0]) == 1e-4 and float(betas[-1]) == pytest.approx(0.02, abs=1e-17)
    torch.testing.assert_close(betas.diff(), torch.full((999,), (0.02 - 1e-4) / 999, dtype=F64), rtol=0, atol=1e-17)


def test_scaled_linear_betas() -> None:
    roots = ScaledLinearSchedule().betas.sqrt()
    assert float(roots[0]) ** 2 == pytest.approx(0.00085, rel=1e-14)
    assert float(roots[-1]) ** 2 == pytest.approx(0.012, rel=1e-14)
    step = (math.sqrt(0.012) - math.sqrt(0.00085)) / 999
    torch.testing.assert_close(roots.diff(), torch.full((999,), step, dtype=F64), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("schedule", "reference"),
    [
        (LinearSchedule(), LINEAR_ALPHAS_CUMPROD),
        (ScaledLinearSchedule(), SCALED_LINEAR_ALPHAS_CUMPROD),
        (LinearSchedule(rescale_betas_zero_snr=True), LINEAR_ZERO_SNR_ALPHAS_CUMPROD),
    ],
    ids=["linear", "scaled_linear", "linear_zero_snr"],
)
def test_alphas_cumprod_match_diffusers(schedule: DiscreteSchedule, reference: list[float]) -> None:
    # diffusers accumulates in float32; thermogen in float64.
    got = schedule.alphas_cumprod[REF_INDICES]
    torch.testing.assert_close(got, torch.tensor(reference, dtype=F64), rtol=2e-5, atol=1e-7)


# ----------------------------------------------------------------------------
# Improved cosine (Nichol & Dhariwal 2021)

# diffusers squaredcos_cap_v2 betas (float32) at (0, 1, 2, 10, 100, 500, 900, 998, 999).
IMPROVED_COSINE_BETAS_F32 = [
    4.128422369831242e-05, 4.614175122696906e-05, 5.099948248243891e-05, 8.987136243376881e-05,
    0.0005318991607055068, 0.003155691549181938, 0.019741855561733246, 0.7499994039535522, 0.9990000128746033,
]  # fmt: skip
# The same formula evaluated in Python floats (what diffusers does before casting), at (0, 1, 10, 100, 500, 900, 990).
IMPROVED_COSINE_BETAS_F64 = {
    0: 4.128422482196914e-05, 1: 4.614175273665033e-05, 10: 8.987136245297567e-05, 100: 0.0005318991556979569,
    500: 0.003155691441585007, 900: 0.01974185587243449, 990: 0.18998754207369384,
}  # fmt: skip


def test_improved_cosine_betas_equal_diffusers_squaredcos_cap_v2() -> None:
    betas = ImprovedCosineSchedule().betas
    reference = torch.tensor(IMPROVED_COSINE_BETAS_F32, dtype=torch.float32)
    assert torch.equal(betas[REF_INDICES].to(torch.float32), reference)
    for i, value in IMPROVED_COSINE_BETAS_F64.items():
        assert float(betas[i]) == pytest.approx(value, rel=1e-13)
    assert float(betas[-1]) == 0.999  # clipped at max_beta


def test_improved_cosine_alpha_bar_is_f_over_f0_where_unclipped() -> None:
    schedule = ImprovedCosineSchedule()
    t = torch.arange(1, 991, dtype=F64) / 1000
    f = lambda u: torch.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    torch.testing.assert_close(schedule.alpha_bar(t), f(t) / f(torch.zeros((), dtype=F64)), rtol=1e-12, atol=1e-15)


def test_discrete_constructor_errors() -> None:
    with pytest.raises(ValueError, match=r"beta_start=0\.03"):
        LinearSchedule(beta_start=0.03, beta_end=0.02)
    with pytest.raises(ValueError, match=r"num_train_timesteps=1"):
        ScaledLinearSchedule(num_train_timesteps=1)
    with pytest.raises(ValueError, match=r"max_beta=1\.0"):
        ImprovedCosineSchedule(max_beta=1.0)
    with pytest.raises(ConfigError, match="num_train_timesteps"):
        thermogen.from_config({"_class_name": "linear", "num_train_timesteps": "1000"})


# ----------------------------------------------------------------------------
# Zero terminal SNR (Lin et al. 2023)


@pytest.mark.parametrize("name", ["linear", "scaled_linear", "improved_cosine"])
def test_zero_terminal_snr(name: str) -> None:
    plain = registry.get("schedules", name)()
    schedule = registry.get("schedules", name)(rescale_betas_zero_snr=True)
    assert float(schedule.noise_rate(1.0)) == 1.0 and float(schedule.signal_rate(1.0)) == 0.0
    assert float(schedule.alphas_cumprod[-1]) == 0.0 and float(schedule.betas[-1]) == 1.0
    # Algorithm 1 keeps the first signal rate.
    assert float(schedule.alphas_cumprod[0]) == pytest.approx(float(plain.alphas_cumprod[0]), rel=1e-14)
    t = torch.cat([torch.linspace(0, 1 - 1e-9, 1001, dtype=F64), torch.tensor([1.0], dtype=F64)])
    signal, noise = schedule.rates(t)
    assert bool(torch.all(torch.isfinite(signal) & torch.isfinite(noise)))
    log_snr = schedule.log_snr(t)
    assert not bool(torch.any(torch.isnan(log_snr)))
    assert bool(torch.all(torch.isfinite(log_snr[1:-1]))) and float(log_snr[-1]) == -math.inf
    assert float(log_snr[0]) == math.inf
    # Last segment: the signal rate falls linearly to 0, so the schedule stays continuous.
    steps = schedule.num_train_timesteps
    s_prev = math.sqrt(float(schedule.alphas_cumprod[-2]))
    for frac in (0.0, 0.5, 0.75):
        assert float(schedule.signal_rate((steps - 1 + frac) / steps)) == pytest.approx((1 - frac) * s_prev, rel=1e-12)


def test_zero_terminal_snr_config_round_trip() -> None:
    schedule = ImprovedCosineSchedule(num_train_timesteps=50, rescale_betas_zero_snr=True)
    rebuilt = thermogen.from_config(schedule.to_config())
    assert torch.equal(rebuilt.betas, schedule.betas)


# ----------------------------------------------------------------------------
# diffusers scheduler_config.json


def test_from_diffusers_stable_diffusion_config() -> None:
    config = {
        "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
        "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None,
        "clip_sample": False,
    }  # fmt: skip
    schedule = schedule_from_diffusers_config(config)
    assert isinstance(schedule, ScaledLinearSchedule)
    assert schedule.config == ScaledLinearSchedule().config
    torch.testing.assert_close(
        schedule.alphas_cumprod[REF_INDICES],
        torch.tensor(SCALED_LINEAR_ALPHAS_CUMPROD, dtype=F64),
        rtol=2e-5,
        atol=1e-7,
    )


def test_from_diffusers_other_schedules() -> None:
    ddpm = schedule_from_diffusers_config({"_class_name": "DDPMScheduler"})  # diffusers defaults
    assert isinstance(ddpm, LinearSchedule) and ddpm.config == LinearSchedule().config
    cosine = schedule_from_diffusers_config(
        {"beta_schedule": "squaredcos_cap_v2", "num_train_timesteps": 500, "rescale_betas_zero_snr": True}
    )
    assert isinstance(cosine, ImprovedCosineSchedule)
    assert cosine.config == ImprovedCosineSchedule(num_train_timesteps=500, rescale_betas_zero_snr=True).config
    scaled = schedule_from_diffusers_config({"beta_schedule": "scaled_linear"})  # diffusers' defaults, not SD's
    assert scaled.config["beta_start"] == 1e-4 and scaled.config["beta_end"] == 0.02


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"beta_schedule": "sigmoid"}, "sigmoid"),
        ({"trained_betas": [0.1, 0.3]}, "trained_betas"),
        ({"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}, "FlowMatchEulerDiscreteScheduler"),
        ({"beta_start": "0.1"}, "beta_start"),
        ({"num_train_timesteps": 10.5}, "num_train_timesteps"),
        ({"rescale_betas_zero_snr": "yes"}, "rescale_betas_zero_snr"),
        ({"beta_start": 0.5, "beta_end": 0.1}, "beta_start=0.5"),
    ],
)
def test_from_diffusers_errors(config: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        schedule_from_diffusers_config(config)


# ----------------------------------------------------------------------------
# Plot


def test_plot_schedules_writes_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from thermogen.viz import plot_schedules

    path = plot_schedules(path=tmp_path / "figs" / "schedules.png", num_points=64)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    extra = plot_schedules(["linear", LinearSchedule(rescale_betas_zero_snr=True)], tmp_path / "two.png", 32)
    assert extra.stat().st_size > 0


def test_plot_schedules_without_matplotlib(tmp_path, monkeypatch) -> None:
    from thermogen.viz import plot_schedules

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install thermogen\[plot\]"):
        plot_schedules(path=tmp_path / "x.png")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_rates_on_cuda_without_host_syncs(name: str) -> None:
    schedule = build(name)
    t = torch.rand(64, dtype=F64, generator=torch.Generator().manual_seed(0))
    expected = schedule.rates(t)
    like = torch.zeros(64, 3, 8, 8, device="cuda", dtype=torch.float16)
    t_cuda = t.cuda()
    schedule.rates(t_cuda, like=like)  # first call may copy tables to the device
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        got = schedule.rates(t_cuda, like=like)
        log_snr = schedule.log_snr(t_cuda)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert got[0].device.type == "cuda" and got[0].shape == (64, 1, 1, 1) and log_snr.device.type == "cuda"
    for a, b in zip(got, expected):
        torch.testing.assert_close(a.cpu().double().reshape(-1), b, rtol=0, atol=1e-3)
