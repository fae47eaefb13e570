"""Networks: the book's U-Net noise predictor (``unet``), a DDPM-style U-Net (``ddpm_unet``) and the
book's energy CNN (``energy_cnn``). The MNIST classifier used for evaluation lives in :mod:`thermogen.mnist`."""
