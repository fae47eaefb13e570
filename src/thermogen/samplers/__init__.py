"""Samplers: the diffusion family (reverse a noise schedule) and the energy family (Markov chains)."""

from thermogen.samplers.callbacks import STOP, StepInfo
from thermogen.samplers.diffusion_base import (
    DiffusionSampleOutput,
    DiffusionSampler,
    DiffusionStepOutput,
)
from thermogen.samplers.energy_base import EnergySampleOutput, EnergySampler, EnergyStepOutput

__all__ = [
    "STOP",
    "DiffusionSampleOutput",
    "DiffusionSampler",
    "DiffusionStepOutput",
    "EnergySampleOutput",
    "EnergySampler",
    "EnergyStepOutput",
    "StepInfo",
]
