"""The energy-sampler family: Markov chains on an :class:`~thermogen.interfaces.EnergyModel`.

Registered names (entry-point group ``thermogen.samplers``): ``sgld`` (the book's
clipped Langevin chain), ``mala`` and ``hmc``.
"""

from thermogen.samplers.energy.base import EnergySampleOutput, EnergySampler, EnergyStepOutput
from thermogen.samplers.energy.hmc import HMCSampler
from thermogen.samplers.energy.mala import MALASampler
from thermogen.samplers.energy.sgld import SGLDSampler

__all__ = [
    "EnergySampleOutput",
    "EnergySampler",
    "EnergyStepOutput",
    "HMCSampler",
    "MALASampler",
    "SGLDSampler",
]
