"""Samplers: the diffusion family (reverse a noise schedule) and the energy family (Markov chains).

Registered names (entry-point group ``thermogen.samplers``): ``ddim``, ``ddpm``,
``dpmpp_2m``, ``dpmpp_3m``, ``euler``, ``heun``, ``unipc``, ``ipndm``, ``deis`` (diffusion); ``sgld``, ``ula``,
``mala``, ``hmc`` (energy).
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
from thermogen.samplers.energy import (
    EnergySampleOutput,
    EnergySampler,
    EnergyStepOutput,
    HMCSampler,
    MALASampler,
    SGLDSampler,
    ULASampler,
)

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
    "ULASampler",
    "UniPCSampler",
]
