"""DiffusionPipeline: noise predictor + noise schedule + sampler + normalizer -> images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from thermogen.interfaces import NoisePredictor, NoiseSchedule
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.images import OutputType, to_output
from thermogen.samplers.callbacks import Callback
from thermogen.samplers.diffusion_base import DiffusionSampler


@dataclass(frozen=True)
class DiffusionPipelineOutput:
    """Generated images and, if asked for, the denormalised x_0 estimates along the way.

    Attributes:
        images: list of PIL images, a float numpy array (B, H, W, C), or a tensor (B, C, H, W), all in [0, 1].
        trajectory: (steps + 1, B, C, H, W) samples x_t in model space, if ``return_trajectory``.
    """

    images: Any
    trajectory: Tensor | None = None


class DiffusionPipeline(Pipeline):
    """Generate images by reversing ``schedule`` with ``sampler`` and the noise predictor ``model``.

    The model works in normalised space; outputs are denormalised and clipped to [0, 1].
    """

    component_kinds: ClassVar[dict[str, str]] = {
        "model": "models",
        "schedule": "schedules",
        "sampler": "samplers",
        "normalizer": "components",
    }

    def __init__(
        self,
        model: NoisePredictor,
        schedule: NoiseSchedule,
        sampler: DiffusionSampler,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.model = model.eval()  # sampling uses BatchNorm's running statistics
        self.schedule = schedule
        self.sampler = sampler
        channels = model_channels(model)
        self.normalizer = normalizer if normalizer is not None else Normalizer((0.0,) * channels, (1.0,) * channels)
        self.progress = True

    # -- generation --------------------------------------------------------------

    def sample_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, from the model's config."""
        return (
            model_channels(self.model),
            int(getattr(self.model, "image_size", 32)),
            int(getattr(self.model, "image_size", 32)),
        )

    def make_noise(self, batch_size: int, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal initial noise (batch_size, C, H, W) on the pipeline's device and dtype."""
        _check_positive("batch_size", batch_size)
        return torch.randn(
            (batch_size, *self.sample_shape()), generator=generator, device=self.device, dtype=self.dtype
        )

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 16,
        num_inference_steps: int = 20,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
        eta: float | None = None,
        output_type: OutputType = "pil",
        callback: Callback | None = None,
        return_trajectory: bool = False,
        progress: bool | None = None,
    ) -> DiffusionPipelineOutput:
        """Generate ``batch_size`` images with ``num_inference_steps`` sampler steps.

        Args:
            batch_size: number of images; ignored when ``initial_noise`` is given.
            num_inference_steps: sampler steps (positive).
            generator: makes the initial noise (and stochastic samplers) reproducible.
            initial_noise: (B, C, H, W) starting noise instead of drawing it.
            eta: stochasticity for samplers that have it (DDIM: 0 deterministic, 1 DDPM-like).
            output_type: "pil", "numpy" (B, H, W, C) or "tensor" (B, C, H, W), values in [0, 1].
            callback: per-step hook, see :mod:`thermogen.samplers.callbacks`.
            return_trajectory: also return every intermediate sample.
            progress: show a progress bar (default: the pipeline's ``progress`` attribute).
        """
        _check_positive("num_inference_steps", num_inference_steps)
        noise = self.make_noise(batch_size, generator) if initial_noise is None else self._check_noise(initial_noise)
        sampler = self._sampler_with(eta)
        result = sampler.sample(
            self.model,
            noise,
            num_inference_steps,
            self.schedule,
            generator=generator,
            callback=callback,
            return_trajectory=return_trajectory,
            progress=self.progress if progress is None else progress,
        )
        images = self.normalizer.denormalize(result.pred_original_sample.float()).clamp(0.0, 1.0)
        return DiffusionPipelineOutput(to_output(images, output_type), result.trajectory)

    def interpolate(
        self,
        noise_a: Tensor,
        noise_b: Tensor,
        num: int = 11,
        num_inference_steps: int = 20,
        method: Literal["book", "slerp"] = "book",
        output_type: OutputType = "tensor",
    ) -> DiffusionPipelineOutput:
        """Generate from ``num`` initial noises between ``noise_b`` (first) and ``noise_a`` (last).

        ``method="book"``: sin(θ)·a + cos(θ)·b with θ from 0 to π/2 (variance
        preserving, ≈ slerp for independent Gaussians); ``"slerp"``: true spherical
        interpolation along the great circle between b and a.
        """
        noises = interpolate_noise(noise_a, noise_b, num, method)
        return self(initial_noise=noises, num_inference_steps=num_inference_steps, output_type=output_type)

    def steps_sweep(
        self,
        steps: Sequence[int] = (1, 2, 3, 4, 5, 20, 100),
        batch_size: int = 10,
        seed: int = 42,
        output_type: OutputType = "tensor",
    ) -> dict[int, Any]:
        """The book's figure: the same initial noise sampled with each number of steps."""
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn((batch_size, *self.sample_shape()), generator=generator).to(self.device, self.dtype)
        return {s: self(initial_noise=noise, num_inference_steps=s, output_type=output_type).images for s in steps}

    # -- helpers -------------------------------------------------------------------

    def _sampler_with(self, eta: float | None) -> DiffusionSampler:
        if eta is None:
            return self.sampler
        if "eta" not in self.sampler.config:
            raise ValueError(f"eta={eta} given, but sampler {type(self.sampler).__name__} has no eta")
        return type(self.sampler).from_config(self.sampler.to_config(), eta=eta)

    def _check_noise(self, noise: Tensor) -> Tensor:
        channels, height, width = self.sample_shape()
        if noise.ndim != 4 or tuple(noise.shape[1:]) != (channels, height, width):
            raise ValueError(
                f"initial_noise has shape {tuple(noise.shape)}; expected (B, {channels}, {height}, {width})"
            )
        return noise.to(self.device, self.dtype)


def model_channels(model: torch.nn.Module) -> int:
    return int(getattr(model, "in_channels", 1))


def interpolate_noise(noise_a: Tensor, noise_b: Tensor, num: int, method: Literal["book", "slerp"] = "book") -> Tensor:
    """``num`` noises from ``noise_b`` to ``noise_a`` (inclusive): (num, *noise_a.shape[-3:])."""
    _check_positive("num", num)
    if noise_a.shape != noise_b.shape:
        raise ValueError(f"noise_a {tuple(noise_a.shape)} and noise_b {tuple(noise_b.shape)} differ in shape")
    a = noise_a.reshape(1, *noise_a.shape[-3:]).double()
    b = noise_b.reshape(1, *noise_b.shape[-3:]).double()
    fraction = torch.linspace(0.0, 1.0, num, dtype=torch.float64, device=a.device).reshape(-1, 1, 1, 1)
    if method == "book":
        theta = fraction * (torch.pi / 2)
        mixed = torch.sin(theta) * a + torch.cos(theta) * b
    elif method == "slerp":
        cos_omega = (a * b).sum() / (a.norm() * b.norm())
        omega = torch.arccos(cos_omega.clamp(-1.0, 1.0))
        mixed = (torch.sin((1 - fraction) * omega) * b + torch.sin(fraction * omega) * a) / torch.sin(omega)
    else:
        raise ValueError(f"method={method!r}; expected 'book' or 'slerp'")
    return mixed.to(noise_a.dtype)


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}; expected a positive integer")
