"""Timestep grids: which diffusion times a sampler visits.

A grid is a float64 CPU tensor of ``num_steps + 1`` times, decreasing from the
first model evaluation to the final time; step ``i`` goes from ``grid[i]`` to
``grid[i + 1]``.

Integer spacings (diffusers' ``timestep_spacing``, identical timesteps for a
discrete schedule with ``T = num_train_timesteps``; integer step ``k`` is
``t = (k + 1) / T``):

* ``leading``: ``k = (n-1-i) * (T // n) + steps_offset`` -> for T = 1000, n = 10: 900, 800, ..., 0.
* ``trailing``: ``k = round(T - i * T / n) - 1`` -> 999, 899, ..., 99 (starts at t = 1;
  Lin et al. 2023 recommend it).
* ``linspace``: ``k = round(linspace(T - 1, 0, n))`` -> 999, 888, ..., 111, 0.

Continuous spacings, for any schedule:

* ``uniform``: ``t = 1 - i / n`` (to the final time): the book's grid, visiting
  1, 1 - 1/n, ..., 1/n and ending at 0.
* ``log_snr``: uniform in ``log SNR = -2 log sigma`` (Lu et al. 2022, DPM-Solver), i.e.
  uniform in ``log sigma``; times via :meth:`NoiseSchedule.time_from_log_snr`.
* ``karras``: ``sigma_i = (sigma_max^(1/rho) + i/(n-1) (sigma_min^(1/rho) - sigma_max^(1/rho)))^rho``
  with rho = 7 (Karras et al. 2022, "Elucidating the Design Space", eq. 5).

Here ``sigma = noise_rate / signal_rate`` (the EDM / variance-exploding noise
level). ``log_snr`` and ``karras`` start at ``min(sigma(1), SIGMA_MAX)``, the
log-SNR floor ``lambda = log(a/s) >= -5.1`` of DPM-Solver (``SIGMA_MAX = e^5.1 =
164``), so a schedule whose sigma at t = 1 is huge or infinite (cosine, zero
terminal SNR) starts below t = 1, where x_T ~ N(0, I) is still exact to ~1/164,
instead of spending steps on pure noise. Measured against EDM's 80 (2-D mixtures,
x_T ~ N(0, I) as a pipeline draws it; docs/schedules-and-samplers.md): a lower
start saves steps at <= 10 evaluations on some mixtures but costs up to 0.02 in
sliced distance from 20 evaluations on where the data mean is far from 0 (the
x_T mismatch ~ mean / sigma_max). Where the final time has sigma > 0 (the book's offset cosine) the
``n + 1`` points run from the start to the final sigma; where the final sigma is
0 the ``n`` visited points run down to ``sigma_min`` (the first training step
``t = 1/T`` of a discrete schedule, else :data:`SIGMA_MIN`) and the last step
goes to sigma = 0, as k-diffusion's ``get_sigmas_karras(...)`` + ``[0]``.

``custom``: the visited times are given (a sampler's ``timesteps`` argument,
stored in its config; e.g. a grid fitted by :mod:`thermogen.samplers.diffusion.tuning`):
``num_steps`` of them in (0, 1], strictly decreasing, then the final time.

A continuous schedule (no ``num_train_timesteps``) has no integer grid: there
``leading``, ``trailing`` and ``linspace`` all mean ``uniform``.

Final time (diffusers' ``set_alpha_to_one``): ``final_time="zero"`` ends at
t = 0 (alpha_bar = 1 for a discrete schedule: ``set_alpha_to_one=True``);
``final_time="first_step"`` ends at t = 1/T, the first training step
(``set_alpha_to_one=False``, alpha_bar = alphas_cumprod[0]); only for discrete
schedules. With ``linspace`` or ``leading`` the last visited time is already
1/T, so that last step has zero length: it moves nothing and only reports the
final x_0 estimate, as in diffusers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from thermogen.checks import check_choice, check_int
from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule

Spacing = Literal["leading", "trailing", "linspace", "uniform", "log_snr", "karras", "custom"]
FinalTime = Literal["zero", "first_step"]
SPACINGS: tuple[str, ...] = ("leading", "trailing", "linspace", "uniform", "log_snr", "karras", "custom")
FINAL_TIMES: tuple[str, ...] = ("zero", "first_step")

LAMBDA_MIN = -5.1
"""Floor of the half log-SNR ``lambda = log(a / s)`` where ``log_snr`` and ``karras`` grids start (DPM-Solver's)."""
SIGMA_MAX = math.exp(-LAMBDA_MIN)
"""Largest sigma = noise/signal where ``log_snr`` and ``karras`` grids start: e^5.1 = 164.0."""
SIGMA_MIN = 0.002
"""Last visited sigma of ``log_snr``/``karras`` grids on a continuous schedule with sigma(0) = 0 (EDM's sigma_min)."""
KARRAS_RHO = 7.0


def check_spacing(spacing: str, final_time: str, steps_offset: int, timesteps: Sequence[float] | None = None) -> None:
    """Validate sampler constructor arguments (ConfigError naming the bad value)."""
    check_choice("spacing", spacing, SPACINGS)
    check_choice("final_time", final_time, FINAL_TIMES)
    check_int("steps_offset", steps_offset, low=0)
    if spacing != "custom":
        if timesteps is not None:
            raise ConfigError(f"timesteps={list(timesteps)!r} given with spacing={spacing!r}; use spacing='custom'")
        return
    if timesteps is None or isinstance(timesteps, (str, bytes)) or len(timesteps) == 0:
        raise ConfigError(f"spacing='custom' needs timesteps, the visited times in (0, 1]; got {timesteps!r}")
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0.0 < t <= 1.0 for t in timesteps):
        raise ConfigError(f"custom timesteps {list(timesteps)!r}; expected numbers in (0, 1]")
    if not all(later < earlier for earlier, later in itertools.pairwise(timesteps)):
        raise ConfigError(f"custom timesteps {list(timesteps)!r}; expected them strictly decreasing")


def num_train_timesteps(schedule: NoiseSchedule) -> int | None:
    """T of a discrete schedule (its ``num_train_timesteps``), None for a continuous one."""
    steps = getattr(schedule, "num_train_timesteps", None)
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def discrete_timesteps(spacing: str, train_steps: int, num_steps: int, steps_offset: int = 0) -> np.ndarray:
    """diffusers' integer timesteps (``DDIMScheduler.set_timesteps``), int64 (num_steps,), decreasing."""
    if num_steps > train_steps:
        raise ValueError(f"num_steps={num_steps} exceeds the schedule's {train_steps} training steps")
    if spacing == "linspace":
        raw: np.ndarray = np.linspace(0, train_steps - 1, num_steps).round()[::-1]
    elif spacing == "leading":
        raw = (np.arange(num_steps) * (train_steps // num_steps)).round()[::-1] + steps_offset
    elif spacing == "trailing":
        raw = np.round(np.arange(train_steps, 0, -train_steps / num_steps))[:num_steps] - 1
    else:
        raise ValueError(f"spacing={spacing!r} has no integer timesteps; expected 'leading', 'trailing' or 'linspace'")
    steps = raw.astype(np.int64)
    if steps.max() >= train_steps or steps.min() < 0:
        raise ValueError(
            f"{spacing} timesteps {steps.tolist()} (steps_offset={steps_offset}) leave 0..{train_steps - 1}"
        )
    return steps


def timestep_grid(
    schedule: NoiseSchedule,
    num_steps: int,
    spacing: str = "linspace",
    final_time: str = "zero",
    steps_offset: int = 0,
    timesteps: Sequence[float] | None = None,
) -> Tensor:
    """The times to visit, float64 (num_steps + 1,) on the CPU, decreasing, ending at the final time.

    ``timesteps``: the ``num_steps`` visited times of ``spacing="custom"``.
    """
    check_spacing(spacing, final_time, steps_offset, timesteps)
    train_steps = num_train_timesteps(schedule)
    if final_time == "first_step" and train_steps is None:
        raise ConfigError(
            f"final_time='first_step' needs a discrete schedule (with num_train_timesteps); {schedule!r} is continuous"
        )
    t_end = 1.0 / train_steps if final_time == "first_step" and train_steps is not None else 0.0
    if spacing == "custom" and timesteps is not None:
        if len(timesteps) != num_steps:
            raise ValueError(f"the custom grid has {len(timesteps)} steps (one per stored time); num_steps={num_steps}")
        if timesteps[-1] <= t_end:
            raise ValueError(f"custom timesteps end at {timesteps[-1]!r}, not after the final time {t_end!r}")
        return torch.tensor([*timesteps, t_end], dtype=torch.float64)
    if spacing in ("leading", "trailing", "linspace") and train_steps is not None:
        steps = discrete_timesteps(spacing, train_steps, num_steps, steps_offset)
        visited = (torch.from_numpy(steps).to(torch.float64) + 1.0) / train_steps
        return torch.cat([visited, torch.tensor([t_end], dtype=torch.float64)])
    if spacing in ("leading", "trailing", "linspace", "uniform"):  # t = 1 - i * step, as the book computes it
        grid = 1.0 - torch.arange(num_steps + 1, dtype=torch.float64) * ((1.0 - t_end) / num_steps)
        grid[-1] = t_end
        return grid
    return _sigma_grid(schedule, num_steps, spacing, t_end, train_steps)


def _sigma(schedule: NoiseSchedule, t: float) -> float:
    """sigma = noise / signal at time t (inf where the signal is 0)."""
    signal, noise = schedule.rates64(torch.tensor([t], dtype=torch.float64))
    a, s = float(signal), float(noise)
    return math.inf if a == 0.0 else s / a


def _sigma_grid(schedule: NoiseSchedule, num_steps: int, spacing: str, t_end: float, train_steps: int | None) -> Tensor:
    sigma_first = _sigma(schedule, 1.0)
    sigma_start = min(sigma_first, SIGMA_MAX)
    sigma_end = _sigma(schedule, t_end)
    if sigma_end > 0.0:  # n steps through n + 1 points, the last one the final time itself
        points, sigma_last = num_steps + 1, sigma_end
    else:  # n visited points down to sigma_min, then one step to sigma = 0
        points = num_steps
        sigma_last = _sigma(schedule, 1.0 / train_steps) if train_steps is not None else SIGMA_MIN
    if not 0.0 < sigma_last < sigma_start:
        raise ValueError(
            f"{spacing} spacing needs sigma_min < sigma_max; {schedule!r} gives {sigma_last!r} and {sigma_start!r}"
        )
    ramp = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    if spacing == "karras":
        lo, hi = sigma_last ** (1.0 / KARRAS_RHO), sigma_start ** (1.0 / KARRAS_RHO)
        sigmas = (hi + ramp * (lo - hi)) ** KARRAS_RHO
    else:  # log_snr: uniform in log sigma
        sigmas = torch.exp(math.log(sigma_start) + ramp * (math.log(sigma_last) - math.log(sigma_start)))
    times = schedule.time_from_log_snr(-2.0 * torch.log(sigmas))
    if sigma_start == sigma_first:
        times[0] = 1.0  # exact, not bisection-accurate
    if points == num_steps + 1:
        times[-1] = t_end
    else:
        times = torch.cat([times, torch.tensor([t_end], dtype=torch.float64)])
    return times
