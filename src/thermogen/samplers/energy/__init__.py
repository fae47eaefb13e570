"""The energy-sampler family: Markov chains on an :class:`~thermogen.interfaces.EnergyModel`.

Registered names (entry-point group ``thermogen.samplers``): ``sgld`` (the book's
clipped Langevin chain), ``ula`` (unadjusted Langevin), ``mala`` and ``hmc``.

A sampler object is configuration only; a chain's state is explicit (see
:mod:`thermogen.samplers.energy.base`)::

    state = sampler.initial_state(model, x, num_steps)
    out = sampler.step(model, x, state, generator=g)        # out.sample, out.accepted, out.state
"""

from thermogen.samplers.energy.base import EnergySampleOutput, EnergySampler, EnergyStepOutput
from thermogen.samplers.energy.hmc import HMCSampler
from thermogen.samplers.energy.mala import MALASampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.samplers.energy.ula import ULASampler

__all__ = [
    "EnergySampleOutput",
    "EnergySampler",
    "EnergyStepOutput",
    "HMCSampler",
    "MALASampler",
    "SGLDSampler",
    "ULASampler",
]
