"""Folders written by thermogen 0.1 keep loading: tests/reference/diffusion-0.1-format was saved by the 0.1 code.

In 0.1 the model's parameterisation lived in the sampler's config (``"prediction_type": "v"``);
loading moves it to the model, where it belongs now. The images are those the 0.1 code made
from the same noise (tests/reference/diffusion-0.1-format-images.safetensors).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from locations import REFERENCE
from safetensors.torch import load_file

from thermogen.pipelines import DiffusionPipeline, Pipeline

LEGACY = REFERENCE / "diffusion-0.1-format"
LEGACY_IMAGES = load_file(str(REFERENCE / "diffusion-0.1-format-images.safetensors"))


def test_a_0_1_folder_loads_with_the_prediction_type_on_the_model() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unknown-key warning for the moved prediction_type
        pipe = Pipeline.from_pretrained(LEGACY)
    assert isinstance(pipe, DiffusionPipeline)
    assert pipe.model.prediction_type == "v"
    assert "prediction_type" not in pipe.sampler.config
    images = pipe(
        initial_state=LEGACY_IMAGES["initial_noise"], num_inference_steps=5, output_type="pt", progress=False
    ).images
    torch.testing.assert_close(images, LEGACY_IMAGES["images"], rtol=0, atol=1e-6)


def test_a_0_1_folder_is_saved_again_in_the_current_format(tmp_path: Path) -> None:
    Pipeline.from_pretrained(LEGACY).save_pretrained(tmp_path / "again")
    model = json.loads((tmp_path / "again" / "model" / "config.json").read_text())
    sampler = json.loads((tmp_path / "again" / "sampler" / "config.json").read_text())
    assert model["prediction_type"] == "v" and "prediction_type" not in sampler
    assert Pipeline.from_pretrained(tmp_path / "again").model.prediction_type == "v"


def test_swapping_the_sampler_of_a_0_1_folder_keeps_what_the_model_means() -> None:
    pipe = Pipeline.from_pretrained(LEGACY, sampler="dpmpp_2m")
    assert pipe.model.prediction_type == "v"
    assert pipe.sampler.config["spacing"] == "trailing"  # shared with the saved DDIM: kept
