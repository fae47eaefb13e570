"""DiffusionPipeline: noise predictor + noise schedule + sampler + normalizer -> images."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, overload

import torch
from torch import Tensor

from thermogen.checks import check_finite, check_floating
from thermogen.interfaces import NoisePredictor, NoiseSchedule
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline, PipelineOutput, draw_noise, reject_renamed_keywords
from thermogen.pipelines.images import OutputType, check_output_type, to_output
from thermogen.samplers.callbacks import Callback
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.diffusion.grid import TimeGrid

GeneratorLike = torch.Generator | list[torch.Generator] | None
DEFAULT_NUM_INFERENCE_STEPS = 20
"""Sampler steps of a call that does not say (the book's 20 DDIM steps)."""


@dataclass(frozen=True)
class DiffusionPipelineOutput(PipelineOutput):
    """Generated images and, if asked for, the samples along the way; ``out[0]`` is ``out.images``.

    Attributes:
        images: list of PIL images, a float numpy array (B, H, W, C), or a tensor (B, C, H, W), all in [0, 1].
        trajectory: (steps + 1, B, C, H, W) samples x_t in model space, if ``return_trajectory``.

    Example::

        out = pipe(batch_size=4, output_type="pt")
        out.images.shape, out[0] is out.images       # (4, 1, 28, 28), True
    """

    images: Any
    trajectory: Tensor | None = None


class DiffusionPipeline(Pipeline):
    """Generate images by reversing ``schedule`` with ``sampler`` and the noise predictor ``model``.

    The model works in normalised space; outputs are denormalised and clipped to [0, 1].
    The model owns what it predicts (``model.prediction_type``) and the sample shape
    (``model.sample_shape``); the sampler is configuration only and can be swapped freely.

    Example::

        pipe = DiffusionPipeline.from_pretrained("thermogen/ddim-mnist")
        images = pipe(batch_size=16, num_inference_steps=20, generator=torch.Generator().manual_seed(0)).images
        fast = DiffusionPipeline.from_pretrained("thermogen/ddim-mnist", sampler="dpmpp_2m")   # same model
    """

    component_kinds: ClassVar[dict[str, str]] = {
        "model": "models",
        "schedule": "schedules",
        "sampler": "samplers",
        "normalizer": "components",
    }
    call_keywords: ClassVar[tuple[str, ...]] = ("batch_size", "num_inference_steps", "eta", "output_type")

    conformance: ClassVar[dict[str, Any]] = {
        "components": {
            "model": {"_class_name": "unet", "in_channels": 1, "image_size": 8, "widths": [8, 16], "block_depth": 1},
            "schedule": {"_class_name": "linear"},
            "sampler": {"_class_name": "ddim"},
        },
        "call": {"num_inference_steps": 3},
    }
    """How the conformance kit builds a small instance and makes images (thermogen.testing.conformance)."""

    def __init__(
        self,
        model: NoisePredictor,
        schedule: NoiseSchedule,
        sampler: DiffusionSampler,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.check_components(model=model, schedule=schedule, sampler=sampler, normalizer=normalizer)
        self.model = model.eval()  # sampling uses BatchNorm's running statistics
        self.schedule = schedule
        self.sampler = sampler
        channels = model.sample_shape[0]
        self.normalizer = normalizer if normalizer is not None else Normalizer((0.0,) * channels, (1.0,) * channels)
        self.progress = True

    # -- generation --------------------------------------------------------------

    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (an image: (C, H, W)): the model's ``sample_shape``."""
        return tuple(self.model.sample_shape)

    def make_noise(self, batch_size: int, generator: GeneratorLike = None) -> Tensor:
        """Standard normal initial noise (batch_size, *sample_shape) on the pipeline's device and dtype.

        The size is checked before allocating; with a list of ``batch_size`` generators,
        image i's noise comes from generator i.
        """
        _check_positive("batch_size", batch_size)
        return draw_noise((batch_size, *self.sample_shape()), generator, self.device, self.dtype)

    @overload
    def __call__(
        self,
        batch_size: int = ...,
        num_inference_steps: int | None = ...,
        generator: GeneratorLike = ...,
        initial_state: Tensor | None = ...,
        eta: float | None = ...,
        output_type: OutputType = ...,
        callback: Callback | None = ...,
        return_trajectory: bool = ...,
        progress: bool | None = ...,
        return_dict: Literal[True] = ...,
    ) -> DiffusionPipelineOutput: ...

    @overload
    def __call__(
        self,
        batch_size: int = ...,
        num_inference_steps: int | None = ...,
        generator: GeneratorLike = ...,
        initial_state: Tensor | None = ...,
        eta: float | None = ...,
        output_type: OutputType = ...,
        callback: Callback | None = ...,
        return_trajectory: bool = ...,
        progress: bool | None = ...,
        *,
        return_dict: Literal[False],
    ) -> tuple[Any, ...]: ...

    @torch.inference_mode()
    def __call__(
        self,
        batch_size: int = 16,
        num_inference_steps: int | None = None,
        generator: GeneratorLike = None,
        initial_state: Tensor | None = None,
        eta: float | None = None,
        output_type: OutputType = "pil",
        callback: Callback | None = None,
        return_trajectory: bool = False,
        progress: bool | None = None,
        return_dict: bool = True,
        **renamed: Any,
    ) -> DiffusionPipelineOutput | tuple[Any, ...]:
        """Generate ``batch_size`` images with ``num_inference_steps`` sampler steps.

        Args:
            batch_size: number of images; ignored when ``initial_state`` is given.
            num_inference_steps: sampler steps (positive; None: :data:`DEFAULT_NUM_INFERENCE_STEPS`, 20).
            generator: makes the initial noise (and stochastic samplers) reproducible; a list of
                ``batch_size`` generators (diffusers' convention) makes image i depend on generator i only.
            initial_state: (B, *sample_shape) finite, real starting noise x_T instead of drawing it.
            eta: stochasticity for samplers that have it (DDIM: 0 deterministic, 1 DDPM-like).
            output_type: "pil", "numpy"/"np" (B, H, W, C, float32) or "tensor"/"pt" (B, C, H, W, in the
                pipeline's dtype), values in [0, 1].
            callback: per-step hook, see :mod:`thermogen.samplers.callbacks`.
            return_trajectory: also return every intermediate sample.
            progress: show a progress bar (default: the pipeline's ``progress`` attribute).
            return_dict: False returns a tuple, ``(images,)`` or ``(images, trajectory)``, as diffusers does.

        Returns:
            ``images`` are the sampler's last estimate of the clean image x_0, mapped back to
            pixel space with the normalizer (``denormalize``) and clipped to [0, 1].
        """
        reject_renamed_keywords(type(self), renamed, {"initial_noise": "initial_state"})
        if num_inference_steps is None:
            num_inference_steps = DEFAULT_NUM_INFERENCE_STEPS
        _check_positive("num_inference_steps", num_inference_steps)
        check_output_type(output_type, self.sample_shape(), type(self.model).__name__)
        noise = self.make_noise(batch_size, generator) if initial_state is None else self._check_noise(initial_state)
        sampler = self._sampler_with(eta)
        grid = sampler.grid(self.schedule, num_inference_steps)
        warn_outside_trained_noise_levels(self.model, grid, type(self.schedule).__name__)
        result = sampler.sample(
            self.model,
            noise,
            grid,
            generator=generator,
            callback=callback,
            return_trajectory=return_trajectory,
            progress=self.progress if progress is None else progress,
        )
        images = self.normalizer.denormalize(result.pred_original_sample.float()).clamp(0.0, 1.0)
        output = DiffusionPipelineOutput(to_output(images.to(noise.dtype), output_type), result.trajectory)
        return output if return_dict else output.to_tuple()

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
        return self(initial_state=noises, num_inference_steps=num_inference_steps, output_type=output_type)

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
        return {s: self(initial_state=noise, num_inference_steps=s, output_type=output_type).images for s in steps}

    # -- helpers -------------------------------------------------------------------

    def _sampler_with(self, eta: float | None) -> DiffusionSampler:
        if eta is None:
            return self.sampler
        if "eta" not in self.sampler.config:
            raise ValueError(
                f"eta={eta!r} given, but sampler {type(self.sampler).__name__} has no eta (its arguments: "
                f"{sorted(self.sampler.config)}); drop eta, or load a sampler that has one, e.g. "
                f"from_pretrained(..., sampler={{'_class_name': 'ddim', 'eta': {eta!r}}})"
            )
        return type(self.sampler).from_config(self.sampler.to_config(), eta=eta)

    def _check_noise(self, noise: Tensor) -> Tensor:
        check_floating("initial_state", noise)
        check_finite("initial_state", noise)
        shape = self.sample_shape()
        if noise.ndim != 1 + len(shape) or tuple(noise.shape[1:]) != shape:
            raise ValueError(
                f"initial_state has shape {tuple(noise.shape)}; expected (B, {', '.join(map(str, shape))})"
            )
        return noise.to(self.device, self.dtype)

    @classmethod
    def upgrade_saved(
        cls, index: dict[str, Any], configs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Folders saved by thermogen 0.1 keep ``prediction_type`` in the sampler's config; it moves to the model's."""
        sampler, model = configs.get("sampler"), configs.get("model")
        if sampler is not None and "prediction_type" in sampler:
            sampler = dict(sampler)
            legacy = sampler.pop("prediction_type")
            configs = {**configs, "sampler": sampler}
            if model is not None and "prediction_type" not in model:
                configs["model"] = {**model, "prediction_type": legacy}
        return index, configs


def record_trained_noise_levels(model: NoisePredictor, schedule: NoiseSchedule) -> None:
    """Widen ``model.trained_noise_levels`` to ``schedule``'s noise rates over t in [0, 1].

    Training draws t ~ U(0, 1), so the network sees noise levels from noise_rate(0) to noise_rate(1).
    """
    low, high = float(schedule.noise_rate(0.0)), float(schedule.noise_rate(1.0))
    if model.trained_noise_levels is not None:
        low, high = min(low, model.trained_noise_levels[0]), max(high, model.trained_noise_levels[1])
    model.set_trained_noise_levels(low, high)


def warn_outside_trained_noise_levels(model: NoisePredictor, grid: TimeGrid, schedule_name: str = "schedule") -> None:
    """Warn when ``grid`` asks the model about noise levels it was never trained on.

    A network only knows the noise levels its training schedule produced; a
    schedule that reaches higher ones (or lower, other than the final step to
    t = 0) gives images the network cannot denoise (blobs, saturated pixels).
    """
    trained = getattr(model, "trained_noise_levels", None)
    if trained is None:
        return
    levels = grid.noise_rates[:-1]  # the model is not evaluated at the final time
    lowest, highest = min(levels), max(levels)
    tolerance = 1e-3
    if highest > trained[1] + tolerance or lowest < trained[0] - tolerance:
        warnings.warn(
            f"the {schedule_name} grid of {grid.num_steps} steps visits noise levels "
            f"[{lowest:.4f}, {highest:.4f}], but the model was trained on [{trained[0]:.4f}, {trained[1]:.4f}]; "
            "expect poor images. Sample with the schedule it was trained with, or retrain.",
            UserWarning,
            stacklevel=3,
        )


def interpolate_noise(noise_a: Tensor, noise_b: Tensor, num: int, method: Literal["book", "slerp"] = "book") -> Tensor:
    """``num`` noises from ``noise_b`` to ``noise_a`` (inclusive): (num, *noise_a.shape[-3:])."""
    _check_positive("num", num)
    for name, noise in (("noise_a", noise_a), ("noise_b", noise_b)):
        check_floating(name, noise)
        check_finite(name, noise)
    if noise_a.shape != noise_b.shape:
        raise ValueError(f"noise_a {tuple(noise_a.shape)} and noise_b {tuple(noise_b.shape)} differ in shape")
    a = noise_a.reshape(1, *noise_a.shape[-3:]).double()
    b = noise_b.reshape(1, *noise_b.shape[-3:]).double()
    fraction = torch.linspace(0.0, 1.0, num, dtype=torch.float64, device=a.device).reshape(-1, 1, 1, 1)
    if method == "book":
        theta = fraction * (torch.pi / 2)
        mixed = torch.sin(theta) * a + torch.cos(theta) * b
    elif method == "slerp":
        norms = a.norm() * b.norm()
        if float(norms) == 0.0:
            raise ValueError("slerp needs two non-zero noises; noise_a or noise_b is all zeros")
        omega = float(torch.arccos(((a * b).sum() / norms).clamp(-1.0, 1.0)))
        if math.sin(omega) < 1e-12:  # (anti)parallel endpoints: the great circle is undefined, interpolate linearly
            mixed = (1 - fraction) * b + fraction * a
        else:
            mixed = (torch.sin((1 - fraction) * omega) * b + torch.sin(fraction * omega) * a) / math.sin(omega)
    else:
        raise ValueError(f"method={method!r}; expected 'book' or 'slerp'")
    return mixed.to(noise_a.dtype)


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}; expected a positive integer")
