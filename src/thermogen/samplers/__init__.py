"""Samplers: the diffusion family (reverse a noise schedule) and the energy family (Markov chains).

Registered names (entry-point group ``thermogen.samplers``): ``ddim``, ``ddpm``,
``dpmpp_2m``, ``dpmpp_3m``, ``euler``, ``heun``, ``unipc``, ``ipndm``, ``deis`` (diffusion); ``sgld``, ``ula``,
``mala``, ``hmc`` (energy).
"""

from thermogen.samplers.adams import DEISSampler, IPNDMSampler
from thermogen.samplers.callbacks import STOP, StepInfo
from thermogen.samplers.ddim import DDIMSampler
from thermogen.samplers.ddpm import DDPMSampler
from thermogen.samplers.diffusion_base import (
    DiffusionSampleOutput,
    DiffusionSampler,
    DiffusionStepOutput,
)
from thermogen.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.energy import (
    EnergySampleOutput,
    EnergySampler,
    EnergyStepOutput,
    HMCSampler,
    MALASampler,
    SGLDSampler,
    ULASampler,
)
from thermogen.samplers.euler import EulerSampler
from thermogen.samplers.heun import HeunSampler
from thermogen.samplers.unipc import UniPCSampler

__all__ = [
    "STOP",
    "DDIMSampler",
    "DDPMSampler",
    "DEISSampler",
    "DPMSolverPP2M",
    "DPMSolverPP3M",
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
    "ULASampler",
    "UniPCSampler",
]
