"""The diffusion-sampler family: reverse a noise schedule with a denoiser (protocol in :mod:`.base`)."""

from thermogen.samplers.diffusion.adams import DEISSampler, IPNDMSampler
from thermogen.samplers.diffusion.base import (
    Denoiser,
    DiffusionSampleOutput,
    DiffusionSampler,
    DiffusionStepOutput,
)
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.grid import TimeGrid
from thermogen.samplers.diffusion.heun import HeunSampler
from thermogen.samplers.diffusion.unipc import UniPCSampler

__all__ = [
    "DDIMSampler",
    "DDPMSampler",
    "DEISSampler",
    "DPMSolverPP2M",
    "DPMSolverPP3M",
    "Denoiser",
    "DiffusionSampleOutput",
    "DiffusionSampler",
    "DiffusionStepOutput",
    "EulerSampler",
    "HeunSampler",
    "IPNDMSampler",
    "TimeGrid",
    "UniPCSampler",
]
