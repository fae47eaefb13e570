"""Pictures of thermogen components (matplotlib is the optional extra ``thermogen[plot]``).

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas,
without pyplot, so plotting never changes the caller's global backend or opens
a window.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thermogen import registry
from thermogen.interfaces import NoiseSchedule

LOG_SNR_LIMIT = 20.0
"""The log-SNR panel shows at most [-20, 20] (SNR from 2e-9 to 5e8)."""


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "thermogen.viz needs matplotlib, an optional dependency; install it with `pip install thermogen[plot]`"
        ) from exc
    return Figure, FigureCanvasAgg


def _label(schedule: NoiseSchedule) -> str:
    """Registered name plus the constructor arguments that differ from their defaults."""
    try:
        name = registry.name_of(schedule.registry_kind, type(schedule))
    except LookupError:
        name = type(schedule).__name__
    params = inspect.signature(type(schedule).__init__).parameters
    changed = [
        f"{key}={value}"
        for key, value in schedule.config.items()
        if key in params and params[key].default is not inspect.Parameter.empty and params[key].default != value
    ]
    return f"{name} ({', '.join(changed)})" if changed else name


def _schedules(names_or_schedules: Sequence[str | NoiseSchedule] | None) -> list[NoiseSchedule]:
    if names_or_schedules is None:
        names_or_schedules = registry.names("schedules")
    if isinstance(names_or_schedules, (str, NoiseSchedule)):
        names_or_schedules = [names_or_schedules]
    schedules = []
    for item in names_or_schedules:
        if isinstance(item, NoiseSchedule):
            schedules.append(item)
        elif isinstance(item, str):
            schedules.append(registry.get("schedules", item)())
        else:
            raise TypeError(f"plot_schedules got {item!r}; expected a registered schedule name or a NoiseSchedule")
    if not schedules:
        raise ValueError("plot_schedules got no schedules to draw")
    return schedules


def plot_schedules(
    names_or_schedules: Sequence[str | NoiseSchedule] | None = None,
    path: str | Path = "schedules.png",
    num_points: int = 1000,
) -> Path:
    """Draw noise schedules against diffusion time t in [0, 1] and save a PNG.

    Three panels, one colour per schedule:

    1. the *rates* thermogen uses, ``signal_rate = sqrt(alpha_bar)`` (solid) and
       ``noise_rate = sqrt(1 - alpha_bar)`` (dashed);
    2. their squares ``alpha_bar`` (solid) and ``1 - alpha_bar`` (dashed), which is
       what the book's Figure 8-4 plots (and calls signal and noise rates);
    3. ``log_snr = log(alpha_bar / (1 - alpha_bar))``; infinite values (at t = 0,
       or t = 1 with zero terminal SNR) are left out and the axis is clipped to
       ``±LOG_SNR_LIMIT``.

    Args:
        names_or_schedules: registered names (built with their default config)
            or schedule objects; default: every registered schedule.
        path: where to write the PNG (parent folders are created).
        num_points: number of evenly spaced times in [0, 1], >= 2.

    Returns:
        The path written.

    Raises:
        ImportError: matplotlib is not installed (``pip install thermogen[plot]``).
    """
    if isinstance(num_points, bool) or not isinstance(num_points, int) or num_points < 2:
        raise ValueError(f"num_points={num_points!r}; expected an integer >= 2")
    figure_cls, canvas_cls = _matplotlib()
    schedules = _schedules(names_or_schedules)
    t = torch.linspace(0.0, 1.0, num_points, dtype=torch.float64)

    figure = figure_cls(figsize=(15, 4.8), layout="constrained")
    canvas_cls(figure)
    rates_ax, squares_ax, snr_ax = figure.subplots(1, 3)
    colors = [f"C{i % 10}" for i in range(len(schedules))]
    snr_range = [math.inf, -math.inf]
    for schedule, color in zip(schedules, colors):
        signal, noise = (r.numpy() for r in schedule.rates(t))
        log_snr_t = schedule.log_snr(t)
        log_snr = torch.where(torch.isfinite(log_snr_t), log_snr_t, math.nan).numpy()
        label = _label(schedule)
        rates_ax.plot(t.numpy(), signal, color=color, label=label)
        rates_ax.plot(t.numpy(), noise, color=color, linestyle="--")
        squares_ax.plot(t.numpy(), signal**2, color=color)
        squares_ax.plot(t.numpy(), noise**2, color=color, linestyle="--")
        snr_ax.plot(t.numpy(), log_snr, color=color)
        finite = log_snr[~np.isnan(log_snr)]
        if finite.size > 0:
            snr_range = [min(snr_range[0], float(finite.min())), max(snr_range[1], float(finite.max()))]

    rates_ax.set_title("rates: signal √ᾱ (solid), noise √(1−ᾱ) (dashed)")
    squares_ax.set_title("book Fig. 8-4: ᾱ (solid), 1−ᾱ (dashed)")
    snr_ax.set_title("log-SNR = log(ᾱ / (1−ᾱ))")
    for ax in (rates_ax, squares_ax, snr_ax):
        ax.set_xlabel("diffusion time t (0 = data, 1 = noise)")
        ax.set_xlim(0.0, 1.0)
        ax.grid(alpha=0.3)
    rates_ax.set_ylabel("rate")
    squares_ax.set_ylabel("variance")
    snr_ax.set_ylabel("log-SNR")
    for ax in (rates_ax, squares_ax):
        ax.set_ylim(-0.02, 1.02)
    if math.isfinite(snr_range[0]):
        # cos(pi/2) is 6e-17, not 0, so the cosine's log-SNR dives to -74 at t = 1; keep the axis readable.
        low, high = max(snr_range[0], -LOG_SNR_LIMIT), min(snr_range[1], LOG_SNR_LIMIT)
        margin = 0.03 * (high - low) + 1e-3
        snr_ax.set_ylim(low - margin, high + margin)
    figure.legend(loc="outside lower center", ncol=min(len(schedules), 5), frameon=False)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110, format="png")
    return out
