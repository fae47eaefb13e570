"""The pipelines a training run starts from (what ``thermogen train`` builds), with plain arguments.

The networks initialise from torch's global generator: a caller that wants the
run to be a function of its seed seeds it around the call (the CLI forks the
generator and seeds it with ``--seed``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from thermogen import registry
from thermogen.buffers import ReplayBuffer
from thermogen.checks import check_choice
from thermogen.interfaces import NoisePredictor
from thermogen.models.ddpm_unet import DDPMUNet
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.energy.sgld import SGLDSampler

NOISE_PREDICTORS = ("unet", "ddpm_unet")

SAMPLER_OPTIONS: dict[str, dict[str, Any]] = {"ddim": {"spacing": "uniform"}}
"""Options a recipe saves with a sampler besides its defaults: the book's DDIM goes
from t = 1 to 1/S in equal steps, then to t = 0."""

NORMALIZER_IMAGES = 2048
"""Images the normalizer is fitted on when the dataset is not one in-memory tensor."""


def build_diffusion_pipeline(
    images: Dataset[Tensor],
    model: Literal["unet", "ddpm_unet"] = "unet",
    widths: Sequence[int] | None = None,
    block_depth: int = 2,
    attention: bool = True,
    schedule: str = "offset_cosine",
    sampler: str = "ddim",
    prediction_type: str = "epsilon",
) -> DiffusionPipeline:
    """A new diffusion pipeline for the (C, H, W) images of ``images`` (in [0, 1]), with a fitted normalizer.

    Args:
        images: the training set; its first item gives the shape, and the normalizer is fitted
            on its ``images`` tensor if it has one (e.g. :class:`~thermogen.data.MNIST`), else
            on its first :data:`NORMALIZER_IMAGES` items.
        model: the noise predictor, ``"unet"`` or ``"ddpm_unet"`` (:func:`noise_predictor`).
        widths: its channels per level (None: the network's default).
        block_depth: its residual blocks per level.
        attention: self-attention in the middle (``"ddpm_unet"`` only).
        schedule: a registered noise schedule, with its defaults.
        sampler: the sampler saved with the pipeline (:func:`recipe_sampler`).
        prediction_type: what the network is trained to output ("epsilon" or "v"), saved in its config.
    """
    sample = images[0]
    channels, size = int(sample.shape[0]), int(sample.shape[-1])
    pixels = getattr(images, "images", None)
    if pixels is None:
        pixels = torch.stack([images[i] for i in range(min(len(images), NORMALIZER_IMAGES))])  # type: ignore[arg-type]
    network = noise_predictor(model, channels, size, widths, block_depth, attention)
    network.set_prediction_type(prediction_type)
    return DiffusionPipeline(
        model=network,
        schedule=registry.get("schedules", schedule)(),
        sampler=recipe_sampler(sampler),
        normalizer=Normalizer.fit(pixels),
    )


def noise_predictor(
    model: Literal["unet", "ddpm_unet"],
    channels: int,
    image_size: int,
    widths: Sequence[int] | None = None,
    block_depth: int = 2,
    attention: bool = True,
) -> NoisePredictor:
    """The book's U-Net (``"unet"``) or the DDPM-style one (``"ddpm_unet"``, with ``attention`` in the middle).

    ``widths=None`` keeps each network's default widths.
    """
    options: dict[str, Any] = {"block_depth": block_depth} | ({} if widths is None else {"widths": widths})
    if check_choice("model", model, NOISE_PREDICTORS) == "ddpm_unet":
        return DDPMUNet(channels, image_size, attention=attention, **options)
    return UNet(channels, image_size, **options)


def recipe_sampler(name: str) -> DiffusionSampler:
    """The registered sampler ``name`` with its defaults and :data:`SAMPLER_OPTIONS`."""
    options = dict(SAMPLER_OPTIONS.get(name, {}))
    return registry.get("samplers", name).from_config(options)  # type: ignore[no-any-return]


def build_ebm_pipeline(
    sample_shape: Sequence[int], langevin_steps: int = 60, step_size: float = 10.0, noise_std: float = 0.005
) -> EBMPipeline:
    """A new energy-based pipeline for images of ``sample_shape`` (C, H, W): the book's energy CNN, a Langevin
    sampler of ``langevin_steps`` steps of ``step_size`` with noise ``noise_std``, and a replay buffer."""
    channels, _, size = (int(n) for n in sample_shape)
    return EBMPipeline(
        energy_model=EnergyCNN(in_channels=channels, image_size=size),
        sampler=SGLDSampler(num_steps=langevin_steps, step_size=step_size, noise_std=noise_std),
        buffer=ReplayBuffer(sample_shape=(channels, size, size)),
    )
