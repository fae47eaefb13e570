"""thermogen: energy-based and denoising diffusion models with pluggable schedules and samplers.

The four interfaces are :class:`EnergyModel`, :class:`NoisePredictor`,
:class:`NoiseSchedule` and :class:`Sampler`; every concrete piece is a plugin
registered under a name (see :mod:`thermogen.registry`).
"""

from thermogen.config import from_config
from thermogen.interfaces import EnergyModel, NoisePredictor, NoiseSchedule, Sampler

__version__ = "0.1.0"

__all__ = [
    "EnergyModel",
    "NoisePredictor",
    "NoiseSchedule",
    "Sampler",
    "__version__",
    "from_config",
]
