"""Conformance checks for noise schedules (:class:`thermogen.NoiseSchedule`).

Each check takes a schedule (a registered name, a class or an instance) and returns a
:class:`~thermogen.testing.conformance.CheckResult`, or raises
:class:`~thermogen.testing.conformance.ConformanceError` naming the property, the time
and the measured value. The properties are the conventions of docs/architecture.md:
rates in [0, 1], ``signal² + noise² = 1``, signal decreasing and noise increasing in t,
finite at t = 0 and t = 1, float64 computation cast to the sample's dtype, one time per sample.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from thermogen.interfaces import NoiseSchedule
from thermogen.testing.conformance.components import rebuilt_from_config, resolve
from thermogen.testing.conformance.report import CheckResult, passed, require

F64 = torch.float64
GRID = torch.cat([torch.linspace(0, 1, 20_001, dtype=F64), torch.tensor([1e-12, 1 - 1e-12], dtype=F64)]).sort()[0]
"""The times every check looks at: a dense grid plus points next to both ends."""
DTYPE_TOLERANCE = {torch.float64: 1e-15, torch.float32: 1e-7, torch.bfloat16: 8e-3, torch.float16: 1e-3}


def _schedule(schedule: Any) -> NoiseSchedule:
    return resolve(schedule, "schedules")


def _worst(values: torch.Tensor, times: torch.Tensor) -> tuple[float, float]:
    """(the value at the worst time, that time) for a per-time error."""
    i = int(values.abs().argmax())
    return float(values[i]), float(times[i])


def check_rates_in_unit_interval(schedule: Any) -> CheckResult:
    """0 <= signal_rate(t) <= 1 and 0 <= noise_rate(t) <= 1, float64, on the grid."""
    signal, noise = _schedule(schedule).rates(GRID)
    require(
        signal.dtype == noise.dtype == F64,
        "rates_in_unit_interval",
        "rates(t) on float64 times must be float64",
        f"{signal.dtype}, {noise.dtype}",
    )
    outside = torch.maximum((signal - signal.clamp(0, 1)).abs(), (noise - noise.clamp(0, 1)).abs())
    outside = torch.nan_to_num(outside, nan=math.inf)
    worst, t, i = float(outside.max()), float(GRID[outside.argmax()]), int(outside.argmax())
    require(
        worst == 0.0,
        "rates_in_unit_interval",
        f"a rate leaves [0, 1] at t = {t:.6g}",
        f"signal {float(signal[i]):.6g}, noise {float(noise[i]):.6g}",
    )
    return passed("rates_in_unit_interval", f"{GRID.numel()} times")


def check_variance_preserving(schedule: Any, atol: float = 1e-12) -> CheckResult:
    """signal_rate(t)² + noise_rate(t)² = 1 within ``atol`` on the grid."""
    signal, noise = _schedule(schedule).rates(GRID)
    error = torch.nan_to_num(signal**2 + noise**2 - 1, nan=math.inf)
    worst, t = _worst(error, GRID)
    require(
        abs(worst) <= atol,
        "variance_preserving",
        f"signal² + noise² != 1 at t = {t:.6g}",
        f"signal² + noise² = {1 + worst:.6g}",
    )
    return passed("variance_preserving", f"max |signal² + noise² - 1| = {abs(worst):.1e}")


def check_monotone(schedule: Any) -> CheckResult:
    """The signal rate decreases and the noise rate increases in t; most of the signal is destroyed."""
    signal, noise = _schedule(schedule).rates(GRID)
    rise, fall = signal.diff(), -noise.diff()
    for name, change in (("signal rate rises", rise), ("noise rate falls", fall)):
        worst, t = _worst(change.clamp(min=0), GRID[1:])
        require(worst <= 1e-15, "monotone", f"the {name} at t = {t:.6g}", f"change {worst:.3g}")
    drop = float(signal[0] - signal[-1])
    require(drop > 0.5, "monotone", "the signal rate must fall by more than 0.5 from t = 0 to t = 1", f"{drop:.3f}")
    return passed("monotone", f"signal falls {drop:.3f}")


def check_finite_at_the_ends(schedule: Any) -> CheckResult:
    """Rates, alpha_bar and log-SNR have no NaN at t = 0 and t = 1 (log-SNR may be ±inf there)."""
    s = _schedule(schedule)
    ends = torch.tensor([0.0, 1.0], dtype=F64)
    for name, value in (("rates", torch.stack(s.rates(ends))), ("alpha_bar", s.alpha_bar(ends))):
        require(bool(torch.isfinite(value).all()), "finite_at_the_ends", f"{name} at t = 0 and 1", str(value.tolist()))
    log_snr = s.log_snr(ends)
    require(not bool(torch.isnan(log_snr).any()), "finite_at_the_ends", "log_snr at t = 0 and 1", str(log_snr.tolist()))
    return passed("finite_at_the_ends", f"log-SNR {float(log_snr[0]):.3g} .. {float(log_snr[1]):.3g}")


def check_dtype_kept(schedule: Any) -> CheckResult:
    """With ``like`` a float64/32/16/bf16 sample, every result has its dtype, is finite and equals float64 rounded."""
    s = _schedule(schedule)
    ts = torch.linspace(0, 1, 101, dtype=F64)
    exact = s.signal_rate(ts)
    worst = 0.0
    for dtype, tolerance in DTYPE_TOLERANCE.items():
        like = torch.zeros(3, 2, dtype=dtype)
        for t in (0.0, 1.0, torch.tensor(0.0), torch.tensor([0.0, 0.5, 1.0], dtype=torch.float32)):
            for value in (*s.rates(t, like=like), s.alpha_bar(t, like=like)):
                require(value.dtype == dtype, "dtype_kept", f"rates(t={t}, like={dtype})", f"dtype {value.dtype}")
                require(bool(torch.isfinite(value).all()), "dtype_kept", f"rates(t={t}, like={dtype})", str(value))
        error = float((s.signal_rate(ts, like=like).to(F64) - exact).abs().max())
        require(
            error <= tolerance,
            "dtype_kept",
            f"signal_rate in {dtype} is not the float64 value rounded",
            f"max error {error:.3g} > {tolerance:g}",
        )
        worst = max(worst, error / tolerance)
    return passed("dtype_kept", f"float64/32/16/bf16, worst error {worst:.2f} of tolerance")


def check_per_sample_times(schedule: Any) -> CheckResult:
    """A time per sample (B,) broadcasts as (B, 1, 1, 1); ``add_noise`` uses each sample's own time."""
    s = _schedule(schedule)
    t = torch.tensor([0.0, 0.13, 0.5, 0.87, 1.0], dtype=torch.float32)
    x0 = torch.randn(5, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(5, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    signal, noise = s.rates(t, like=x0)
    require(
        signal.shape == noise.shape == (5, 1, 1, 1),
        "per_sample_times",
        "rates(t (5,), like (5, 2, 3, 3))",
        f"shapes {tuple(signal.shape)}, {tuple(noise.shape)}",
    )
    noisy = s.add_noise(x0, eps, t)
    require(
        noisy.shape == x0.shape and noisy.dtype == x0.dtype,
        "per_sample_times",
        "add_noise keeps shape and dtype",
        f"{tuple(noisy.shape)} {noisy.dtype}",
    )
    worst = 0.0
    for i, ti in enumerate(t.tolist()):
        a, b = s.rates(ti)
        expected = (a * x0[i].double() + b * eps[i].double()).float()
        worst = max(worst, float((noisy[i] - expected).abs().max()))
    require(
        worst <= 1e-6,
        "per_sample_times",
        "add_noise(x0, eps, t)[i] != add_noise with time t[i]",
        f"max difference {worst:.3g}",
    )
    return passed("per_sample_times", f"max difference {worst:.1e}")


def check_log_snr_inverse(schedule: Any, atol: float = 1e-9) -> CheckResult:
    """``time_from_log_snr(log_snr(t)) = t`` inside (0, 1)."""
    s = _schedule(schedule)
    ts = torch.linspace(1e-3, 1 - 1e-3, 257, dtype=F64)
    back = s.time_from_log_snr(s.log_snr(ts))
    worst, t = _worst(back - ts, ts)
    require(
        abs(worst) <= atol,
        "log_snr_inverse",
        f"time_from_log_snr(log_snr(t)) != t at t = {t:.6g}",
        f"error {worst:.3g}",
    )
    return passed("log_snr_inverse", f"max error {abs(worst):.1e}")


def _same_rates(a: NoiseSchedule, b: NoiseSchedule) -> bool:
    ts = torch.linspace(0, 1, 257, dtype=F64)
    return all(torch.equal(x, y) for x, y in zip(a.rates(ts), b.rates(ts)))


def check_config_round_trip(schedule: Any) -> CheckResult:
    """``from_config(json(to_config()))`` is the same class, config and rates."""
    s = _schedule(schedule)
    config, rebuilt = rebuilt_from_config(s, "schedules")
    require(_same_rates(rebuilt, s), "config_round_trip", "rebuilt schedule's rates differ", "not bit-identical")
    return passed("config_round_trip", config["_class_name"])


def check_save_load_round_trip(schedule: Any) -> CheckResult:
    """``save_pretrained`` then ``NoiseSchedule.from_pretrained`` gives the same class, config and rates."""
    s = _schedule(schedule)
    with tempfile.TemporaryDirectory() as tmp:
        s.save_pretrained(Path(tmp) / "scheduler")
        loaded = NoiseSchedule.from_pretrained(Path(tmp) / "scheduler")
    require(
        type(loaded) is type(s) and loaded.config == s.config,
        "save_load_round_trip",
        "from_pretrained",
        f"{type(loaded).__name__} {loaded.config} vs {s.config}",
    )
    require(_same_rates(loaded, s), "save_load_round_trip", "loaded schedule's rates differ", "not bit-identical")
    return passed("save_load_round_trip", "same config and rates")


def check_add_noise_statistics(schedule: Any, n: int = 200_000) -> CheckResult:
    """``add_noise`` of data with mean m and std d at time t has mean a m and variance a² d² + s² (5 std errors)."""
    s = _schedule(schedule)
    generator = torch.Generator().manual_seed(7)
    m, d = 2.0, 0.5
    x0 = m + d * torch.randn(n, generator=generator, dtype=F64)
    eps = torch.randn(n, generator=generator, dtype=F64)
    worst = 0.0
    for t in (0.1, 0.5, 0.9):
        a, b = (float(r) for r in s.rates(t))
        noisy = s.add_noise(x0, eps, t)
        var = a**2 * d**2 + b**2
        z_mean = abs(float(noisy.mean()) - a * m) / math.sqrt(var / n)
        z_var = abs(float(noisy.var()) - var) / (var * math.sqrt(2 / n))
        require(
            max(z_mean, z_var) < 5,
            "add_noise_statistics",
            f"add_noise at t = {t} (data mean {m}, std {d})",
            f"mean {float(noisy.mean()):.4f} (expected {a * m:.4f}), var {float(noisy.var()):.4f} (expected {var:.4f})",
        )
        worst = max(worst, z_mean, z_var)
    return passed("add_noise_statistics", f"worst {worst:.1f} standard errors")


CHECKS = (
    check_rates_in_unit_interval,
    check_variance_preserving,
    check_monotone,
    check_finite_at_the_ends,
    check_dtype_kept,
    check_per_sample_times,
    check_log_snr_inverse,
    check_config_round_trip,
    check_save_load_round_trip,
    check_add_noise_statistics,
)
"""Every schedule check, in the order :func:`~thermogen.testing.conformance.run_checks` runs them."""
