"""Training losses, usable in hand-written training loops as well as by the trainers."""

from thermogen.losses.denoising import denoising_loss, denoising_target, snr_weight

__all__ = ["denoising_loss", "denoising_target", "snr_weight"]
