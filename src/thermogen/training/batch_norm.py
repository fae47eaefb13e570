"""Re-estimate BatchNorm statistics for the weights a diffusion pipeline samples with.

A BatchNorm layer normalises with the batch's statistics while training and
with its running averages when sampling. After training, those running averages
are an exponential average over many past versions of the weights (and the EMA
copy averages them once more), so they do not quite describe the activations of
the final weights. Recalibration runs the final network in training mode over
noisy training batches, drawn exactly as in training (t ~ U(0, 1), eps ~ N(0, I)),
and sets every running mean and variance to the plain average over those
batches (``momentum=None``). Nothing else changes: no parameter is touched.

Measured on the bundled MNIST U-Net (DDIM, 20 steps): at step 6,750 of a
constant-rate run it lowered the Fréchet distance from 84.1 to 77.3 (N = 500);
after the cosine learning-rate decay to step 13,500 it changed nothing beyond
noise (84.2 before, 86.0 after, N = 2000; see the model card).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.training.batches import gather


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-d, 2-d, 3-d, sync) of ``model`` that tracks running statistics."""
    return [
        module
        for module in model.modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
    ]


@torch.no_grad()
def recalibrate_batch_norm(
    pipeline: DiffusionPipeline,
    dataset: Dataset,
    batches: int = 100,
    batch_size: int = 64,
    seed: int = 0,
) -> int:
    """Replace the running statistics of ``pipeline.model``'s BatchNorm layers; returns how many layers.

    Args:
        pipeline: its model, schedule and normalizer are used; the model is left in eval mode.
        dataset: training images (C, H, W) in [0, 1], as for :class:`~thermogen.training.diffusion.DiffusionTrainer`.
        batches: forward passes to average over (each layer's mean and variance are the plain
            average of the per-batch values, as ``momentum=None`` computes them).
        batch_size: images per pass.
        seed: images, times and noise are drawn from a generator seeded with it.

    A model without BatchNorm is left as it is (returns 0).
    """
    for name, value in (("batches", batches), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r}; expected a positive integer")
    model: nn.Module = pipeline.model  # type: ignore[assignment]
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    was_training = model.training
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average
        model.train()
        count = len(dataset)  # type: ignore[arg-type]
        for _ in range(batches):
            indices = torch.randint(0, count, (batch_size,), generator=generator)
            x0 = pipeline.normalizer.normalize(gather(dataset, indices).to(torch.float32))
            noise = torch.randn(x0.shape, generator=generator)
            t = torch.rand(batch_size, generator=generator, dtype=torch.float64)
            signal_rate, noise_rate = pipeline.schedule.rates(t, like=x0)
            noisy = signal_rate * x0 + noise_rate * noise
            model(noisy.to(device), noise_rate.reshape(batch_size).to(device))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    model.eval()
    return len(layers)
