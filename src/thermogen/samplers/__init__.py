"""Samplers: the diffusion family (reverse a noise schedule) and the energy family (Markov chains).

Registered names (entry-point group ``thermogen.samplers``): ``ddim``, ``ddpm``,
``dpmpp_2m``, ``dpmpp_3m``, ``euler``, ``heun``, ``unipc``, ``ipndm``, ``deis`` (diffusion); ``sgld``, ``mala``,
``hmc`` (energy).
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
from thermogen.samplers.energy_base import EnergySampleOutput, EnergySampler, EnergyStepOutput
from thermogen.samplers.euler import EulerSampler
from thermogen.samplers.heun import HeunSampler
from thermogen.samplers.hmc import HMCSampler
from thermogen.samplers.langevin import SGLDSampler
from thermogen.samplers.mala import MALASampler
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
    "UniPCSampler",
]
