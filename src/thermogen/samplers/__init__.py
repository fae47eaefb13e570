"""Samplers: the diffusion family (reverse a noise schedule) and the energy family (Markov chains).

Registered names (entry-point group ``thermogen.samplers``): ``ddim``, ``ddpm``,
``dpmpp_2m``, ``dpmpp_3m``, ``euler``, ``heun``, ``unipc``, ``ipndm``, ``deis`` (diffusion); ``sgld``, ``mala``,
``hmc`` (energy).
"""

from thermogen.samplers.callbacks import STOP, StepInfo
from thermogen.samplers.diffusion import (
    DDIMSampler,
    DDPMSampler,
    DEISSampler,
    Denoiser,
    DiffusionSampleOutput,
    DiffusionSampler,
    DiffusionStepOutput,
    DPMSolverPP2M,
    DPMSolverPP3M,
    EulerSampler,
    HeunSampler,
    IPNDMSampler,
    TimeGrid,
    UniPCSampler,
)
from thermogen.samplers.energy_base import EnergySampleOutput, EnergySampler, EnergyStepOutput
from thermogen.samplers.hmc import HMCSampler
from thermogen.samplers.langevin import SGLDSampler
from thermogen.samplers.mala import MALASampler

__all__ = [
    "STOP",
    "DDIMSampler",
    "DDPMSampler",
    "DEISSampler",
    "DPMSolverPP2M",
    "DPMSolverPP3M",
    "Denoiser",
    "DiffusionSampleOutput",
    "DiffusionSampler",
    "DiffusionStepOutput",
    "EnergySampleOutput",
    "EnergySampler",
    "EnergyStepOutput",
    "EulerSampler",
    "HMCSampler",
    "HeunSampler",
    "IPNDMSampler",
    "MALASampler",
    "SGLDSampler",
    "StepInfo",
    "TimeGrid",
    "UniPCSampler",
]
