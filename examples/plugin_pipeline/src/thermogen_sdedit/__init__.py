"""SDEdit (Meng et al. 2022) as a thermogen pipeline plugin: edit images by noising them part way and denoising.

Given images x (B, C, H, W) in [0, 1] and a strength in (0, 1], the pipeline noises the
normalised images to the first grid time t0 <= strength, ``x_t0 = a x + s eps``, and runs
the sampler from t0 down to 0. Strength 1 is plain generation; small strengths keep more
of the input.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from thermogen.pipelines import DiffusionPipeline, DiffusionPipelineOutput
from thermogen.pipelines.base import draw_noise
from thermogen.pipelines.images import to_output
from thermogen.samplers import TimeGrid


class SDEditPipeline(DiffusionPipeline):
    """A :class:`DiffusionPipeline` that starts from given images (default: mid-grey) instead of pure noise."""

    conformance: ClassVar[dict[str, Any]] = {
        "components": {
            "model": {"_class_name": "unet", "in_channels": 1, "image_size": 8, "widths": [8, 16], "block_depth": 1},
            "schedule": {"_class_name": "linear"},
            "sampler": {"_class_name": "ddim"},
        },
        "call": {"num_inference_steps": 4, "strength": 0.6},
    }

    @torch.inference_mode()
    def __call__(  # type: ignore[override]
        self,
        batch_size: int = 1,
        images: Tensor | None = None,
        strength: float = 0.5,
        num_inference_steps: int = 20,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        progress: bool | None = None,
        return_dict: bool = True,
    ) -> Any:
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength={strength!r}; expected a number in (0, 1]")
        if images is None:
            images = torch.full((batch_size, *self.sample_shape()), 0.5, device=self.device, dtype=self.dtype)
        x0 = self.normalizer.normalize(images.to(device=self.device, dtype=self.dtype))
        grid = self.sampler.grid(self.schedule, num_inference_steps)
        start = next(i for i, t in enumerate(grid.times) if t <= strength)
        grid = TimeGrid.from_times(self.schedule, grid.times[start:])  # the loop starts part way
        noise = draw_noise(tuple(x0.shape), generator, self.device, self.dtype)
        x = self.schedule.add_noise(x0, noise, grid.times[0])
        pred = self.sampler.sample(self.model, x, grid, generator=generator).pred_original_sample
        result = self.normalizer.denormalize(pred.float()).clamp(0.0, 1.0).to(x0.dtype)
        output = DiffusionPipelineOutput(to_output(result, output_type), None)  # type: ignore[arg-type]
        return output if return_dict else output.to_tuple()
