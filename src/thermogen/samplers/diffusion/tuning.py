"""Fitted time grids: the N times a sampler visits, chosen for one model.

A fixed spacing (``log_snr``, ``karras``, ...) is a guess made for every model
at once. With a handful of evaluations the best grid depends on the model, the
schedule and the sampler, so it pays to fit it (Sabour et al. 2024, "Align Your
Steps"; Chen et al. 2024, GITS; Xue et al. 2024, "Accelerating Diffusion
Sampling with Optimized Time Steps"). Here the fit is the most direct one:

    minimise   D(t_1 .. t_N) = mean_b || x_0(x_T^b; t_1 .. t_N) - x_0^ref(x_T^b) ||

over the N visited times (the final time stays the sampler's), where
``x_0(x_T; t)`` is the sampler's final x_0 estimate (what a pipeline turns into
images; the last sample itself where the grid ends at sigma = 0) on the grid from the initial noise
``x_T`` (one batch of a few hundred draws, the same at every evaluation of D)
and ``x_0^ref`` a fine-grid solution from the same noise (:func:`reference_solution`).
The fit starts from the best fixed spacing of the sampler at N steps (each
spacing of :mod:`thermogen.samplers.diffusion.spacing` is tried once). The times are
moved in the half log-SNR ``lambda = log(a / s)``, where grids are close to
even, by coordinate descent: each time in turn tries a step of ``+-delta``
in lambda, kept only if D falls and the grid stays strictly decreasing in time
and inside (0, 1]; ``delta`` halves after a sweep without improvement. No
gradients: it works for any model and sampler, at ``2 N`` sampling runs per sweep.

The result is stored as ``spacing="custom"`` with its ``timesteps`` in the
sampler's config (:func:`with_timesteps`), so ``save_pretrained`` /
``from_pretrained`` reproduce it. ``thermogen tune-steps`` runs this for a pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from thermogen.interfaces import NoisePredictor, NoiseSchedule
from thermogen.samplers.diffusion.base import Denoiser, DiffusionSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP3M
from thermogen.samplers.diffusion.spacing import SPACINGS, timestep_grid

ModelFn = NoisePredictor | Denoiser


@dataclass(frozen=True)
class FittedGrid:
    """Result of :func:`fit_timesteps`.

    Attributes:
        timesteps: the N visited times, strictly decreasing, in (0, 1] (the final time is the sampler's).
        distance: D at the fitted grid (mean distance per sample to the reference).
        initial_distance: D at the best fixed spacing, where the fit started.
        initial_timesteps: that starting grid's visited times.
        initial_spacing: the name of that spacing.
        sampling_runs: how many times D was evaluated (each run costs N model evaluations on the batch).

    Example::

        fit = fit_timesteps(model, schedule, DDIMSampler(), nfe=5, x_T=x_T,
                            reference=reference_solution(model, schedule, x_T))
        print(f"{fit.initial_spacing}: {fit.initial_distance:.4f} -> fitted: {fit.distance:.4f}")
        sampler = with_timesteps(DDIMSampler(), fit.timesteps)   # spacing="custom", saved in its config
    """

    timesteps: tuple[float, ...]
    distance: float
    initial_distance: float
    initial_timesteps: tuple[float, ...]
    initial_spacing: str
    sampling_runs: int


def with_timesteps(sampler: DiffusionSampler, timesteps: Sequence[float]) -> DiffusionSampler:
    """A copy of ``sampler`` (same config) on the ``custom`` grid ``timesteps``."""
    config = {**sampler.config, "spacing": "custom", "timesteps": [float(t) for t in timesteps]}
    return type(sampler).from_config(config)


@torch.inference_mode()
def reference_solution(model: ModelFn, schedule: NoiseSchedule, x_T: Tensor, steps: int = 100) -> Tensor:
    """The final x_0 estimate of the probability-flow ODE solved finely from ``x_T``.

    DPM-Solver++(3M), ``steps`` steps even in log-SNR.
    """
    sampler = DPMSolverPP3M(spacing="log_snr", lower_order_final=True)
    return sampler.sample(model, x_T, sampler.grid(schedule, steps)).pred_original_sample


@torch.inference_mode()
def grid_distance(
    model: ModelFn,
    schedule: NoiseSchedule,
    sampler: DiffusionSampler,
    timesteps: Sequence[float],
    x_T: Tensor,
    reference: Tensor,
    embed: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """D: the mean over the batch of ``|| x_0 estimate - reference ||`` (per sample, all dimensions) on the grid.

    With ``embed`` the distance is taken between ``embed(x_0 estimate)`` and
    ``reference``, which is then the embedding of the reference solutions.
    """
    sampler = with_timesteps(sampler, timesteps)
    out = sampler.sample(model, x_T, sampler.grid(schedule, len(timesteps))).pred_original_sample
    if embed is not None:
        out = embed(out)
    return float((out - reference).flatten(1).double().norm(dim=1).mean())


def fit_timesteps(
    model: ModelFn,
    schedule: NoiseSchedule,
    sampler: DiffusionSampler,
    nfe: int,
    x_T: Tensor,
    reference: Tensor,
    sweeps: int = 8,
    delta: float = 0.5,
    progress: Callable[[str], None] | None = None,
    embed: Callable[[Tensor], Tensor] | None = None,
) -> FittedGrid:
    """Fit the ``nfe`` visited times of ``sampler`` to ``reference`` (see the module docstring).

    Args:
        model: the noise predictor, or any denoiser (anything :meth:`DiffusionSampler.sample` accepts).
        schedule: its noise schedule.
        sampler: a sampler with one model evaluation per step (its spacing is not used: the
            fit starts from the best fixed spacing; its ``final_time`` is kept).
        nfe: model evaluations (= steps).
        x_T: (B, ...) initial noise, the same draws as ``reference`` was made from.
        reference: (B, ...) fine-grid solutions from ``x_T`` (:func:`reference_solution`).
        sweeps: passes over the times (each at most ``2 nfe`` sampling runs).
        delta: the first step in lambda; halves after a sweep that improves nothing.
        progress: called with a line after each sweep (e.g. ``print``).
        embed: measure D between ``embed(x_0)`` and ``embed(reference)`` (e.g. a classifier's
            features) instead of between the samples themselves.
    """
    if sampler.evaluations_per_step != 1:
        raise ValueError(f"{type(sampler).__name__} makes several model evaluations per step; fit a one-step sampler")
    if not isinstance(nfe, int) or isinstance(nfe, bool) or nfe < 1:
        raise ValueError(f"nfe={nfe!r}; expected a positive integer")
    if x_T.shape != reference.shape:
        raise ValueError(f"x_T has shape {tuple(x_T.shape)}, reference {tuple(reference.shape)}; expected the same")

    target = reference if embed is None else embed(reference)

    def distance(times: Tensor) -> float:
        return grid_distance(model, schedule, sampler, times.tolist(), x_T, target, embed)

    starts: dict[str, Tensor] = {}
    for spacing in SPACINGS:
        if spacing != "custom":
            grid = timestep_grid(schedule, nfe, spacing, sampler.final_time, sampler.steps_offset)
            if bool((grid.diff() < 0).all()):  # not the zero-length last steps of linspace/leading + first_step
                starts[spacing] = grid
    scores = {spacing: distance(grid[:-1]) for spacing, grid in starts.items()}
    runs = len(scores)
    initial_spacing = min(scores, key=lambda spacing: scores[spacing])
    start, t_end = starts[initial_spacing][:-1], float(starts[initial_spacing][-1])
    lam = 0.5 * schedule.log_snr(start)
    lam_low = float(0.5 * schedule.log_snr(torch.tensor(1.0, dtype=torch.float64)))  # t <= 1

    def times_of(lam: Tensor) -> Tensor | None:
        """Times of the half log-SNRs ``lam``, or None where the grid leaves (t_end, 1] or stops decreasing."""
        if float(lam[0]) < lam_low or not bool((lam.diff() > 0).all()):
            return None
        times = schedule.time_from_log_snr(2.0 * lam).clamp(max=1.0)
        ordered = bool((times.diff() < 0).all()) and float(times[-1]) > t_end and float(times[0]) > t_end
        return times if ordered else None

    times = start.clone()
    best = initial = scores[initial_spacing]
    for sweep in range(sweeps):
        improved = False
        for i in range(nfe):
            for sign in (1.0, -1.0):
                trial = lam.clone()
                trial[i] += sign * delta
                trial_times = times_of(trial)
                if trial_times is None:
                    continue
                value = distance(trial_times)
                runs += 1
                if value < best:
                    lam, times, best, improved = trial, trial_times, value, True
                    break
        if not improved:
            delta /= 2.0
        if progress is not None:
            progress(f"sweep {sweep + 1}/{sweeps}: distance {best:.5f} (start {initial:.5f}), step {delta:g}")
    return FittedGrid(
        timesteps=tuple(times.tolist()),
        distance=best,
        initial_distance=initial,
        initial_timesteps=tuple(start.tolist()),
        initial_spacing=initial_spacing,
        sampling_runs=runs,
    )
