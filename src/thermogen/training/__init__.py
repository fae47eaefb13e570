"""Training loops: denoising (diffusion) and contrastive divergence (energy-based models)."""
