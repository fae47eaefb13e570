"""Training losses, usable in hand-written training loops as well as by the trainers.

* :mod:`~thermogen.losses.denoising`: the diffusion family's denoising loss, targets and weightings;
* :mod:`~thermogen.losses.contrastive_divergence`: the energy family's contrastive-divergence loss.
"""

from thermogen.losses.contrastive_divergence import ContrastiveDivergence, contrastive_divergence_loss
from thermogen.losses.denoising import denoising_loss, denoising_target, snr_weight

__all__ = ["ContrastiveDivergence", "contrastive_divergence_loss", "denoising_loss", "denoising_target", "snr_weight"]
