"""The pipelines a training run starts from: what each recipe builds from plain arguments."""

from __future__ import annotations

import pytest
import torch
from image_sets import Images

from thermogen.errors import ConfigError
from thermogen.models.ddpm_unet import DDPMUNet
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.training.recipes import (
    NORMALIZER_IMAGES,
    build_diffusion_pipeline,
    build_ebm_pipeline,
    noise_predictor,
    recipe_sampler,
)


class Items(torch.utils.data.Dataset):
    """A dataset without an ``images`` tensor (an image folder): items only."""

    def __init__(self, images: torch.Tensor) -> None:
        self.stored = images

    def __len__(self) -> int:
        return len(self.stored)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.stored[index]


def test_the_default_diffusion_recipe_is_the_books() -> None:
    images = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    pipeline = build_diffusion_pipeline(Images(images), widths=(4, 8), block_depth=1)
    assert type(pipeline.model) is UNet and pipeline.model.config["widths"] == [4, 8]
    assert pipeline.model.config["block_depth"] == 1 and pipeline.sample_shape() == (1, 8, 8)
    assert pipeline.schedule.to_config()["_class_name"] == "offset_cosine"
    sampler = pipeline.sampler.to_config()
    assert sampler["_class_name"] == "ddim" and sampler["spacing"] == "uniform"  # the book's DDIM grid
    assert pipeline.model.to_config()["prediction_type"] == "epsilon" and "prediction_type" not in sampler
    assert pipeline.normalizer.config == Normalizer.fit(images).config  # fitted on every image


def test_the_normalizer_of_a_dataset_without_an_images_tensor_is_fitted_on_its_first_items() -> None:
    images = torch.rand(NORMALIZER_IMAGES + 7, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    images[NORMALIZER_IMAGES:] += 5.0  # beyond the first NORMALIZER_IMAGES: would move the mean if read
    pipeline = build_diffusion_pipeline(Items(images), widths=(4, 8), block_depth=1)
    assert pipeline.normalizer.config == Normalizer.fit(images[:NORMALIZER_IMAGES]).config
    assert pipeline.sample_shape() == (3, 4, 4)


def test_diffusion_recipe_options_reach_the_components() -> None:
    pipeline = build_diffusion_pipeline(
        Items(torch.rand(4, 1, 8, 8)),
        model="ddpm_unet",
        widths=(8, 16),
        block_depth=1,
        attention=False,
        schedule="cosine",
        sampler="euler",
        prediction_type="v",
    )
    assert type(pipeline.model) is DDPMUNet and pipeline.model.config["attention"] is False
    assert pipeline.schedule.to_config()["_class_name"] == "cosine"
    sampler = pipeline.sampler.to_config()
    assert sampler["_class_name"] == "euler" and pipeline.model.to_config()["prediction_type"] == "v"
    assert recipe_sampler("ddpm").to_config()["_class_name"] == "ddpm"
    with pytest.raises(ConfigError, match="model='vit'; expected one of 'unet', 'ddpm_unet'"):
        noise_predictor("vit", 1, 8)  # type: ignore[arg-type]


def test_the_ebm_recipe_is_the_books_with_the_langevin_settings_given() -> None:
    pipeline = build_ebm_pipeline((1, 16, 16), langevin_steps=7, step_size=2.0)
    assert pipeline.sample_shape() == (1, 16, 16)
    energy = pipeline.energy_model.config
    assert energy == {"in_channels": 1, "image_size": 16, "widths": [16, 32, 64, 64], "hidden": 64}
    sampler = pipeline.sampler.config
    assert (sampler["num_steps"], sampler["step_size"], sampler["noise_std"]) == (7, 2.0, 0.005)
    assert pipeline.buffer is not None and pipeline.buffer.sample_shape == (1, 16, 16)
