"""Noise schedules on continuous time t in [0, 1] (see :class:`thermogen.NoiseSchedule`).

Registered names (entry-point group ``thermogen.schedules``):

* ``cosine``, ``offset_cosine`` — the book's continuous angle schedules (:mod:`.cosine`).
* ``linear``, ``scaled_linear`` — DDPM and latent-diffusion betas (:mod:`.linear`).
* ``improved_cosine`` — Nichol & Dhariwal's cosine betas (:mod:`.improved_cosine`).

The discrete (beta-based) ones share :class:`DiscreteSchedule`; a diffusers
``scheduler_config.json`` maps onto them with :func:`thermogen.diffusers_interop.schedule_from_diffusers_config`.
"""

from thermogen.schedules.cosine import CosineSchedule, OffsetCosineSchedule
from thermogen.schedules.discrete import DiscreteSchedule, rescale_zero_terminal_snr
from thermogen.schedules.improved_cosine import ImprovedCosineSchedule
from thermogen.schedules.linear import LinearSchedule, ScaledLinearSchedule

__all__ = [
    "CosineSchedule",
    "DiscreteSchedule",
    "ImprovedCosineSchedule",
    "LinearSchedule",
    "OffsetCosineSchedule",
    "ScaledLinearSchedule",
    "rescale_zero_terminal_snr",
]
