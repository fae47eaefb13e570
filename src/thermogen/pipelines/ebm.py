"""EBMPipeline: energy model + Langevin-type sampler (+ replay buffer) -> samples.

The energy model works on samples in [-1, 1] (the book's EBM preprocessing);
the pipeline's inputs and outputs are in [0, 1], like every pipeline's images.
The shape of one sample is the energy model's ``sample_shape``: images
(C, H, W) can be returned as PIL images or arrays, any other shape (a 2-D toy
energy's (2,)) as tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, overload

import torch
from torch import Tensor

from thermogen.buffers import ReplayBuffer
from thermogen.checks import check_finite, check_floating, check_positive_int
from thermogen.errors import ConfigError
from thermogen.interfaces import EnergyModel
from thermogen.pipelines.base import Pipeline, PipelineOutput, draw_noise, reject_renamed_keywords
from thermogen.pipelines.images import OutputType, check_output_type, to_output
from thermogen.pixels import to_signed_range, to_unit_range
from thermogen.samplers.callbacks import Callback
from thermogen.samplers.energy.base import EnergySampler

DEFAULT_NUM_INFERENCE_STEPS = 1000
"""The book's chain length when generating from noise."""


@dataclass(frozen=True)
class EBMPipelineOutput(PipelineOutput):
    """Generated images and the chain's snapshots; ``out[0]`` is ``out.images``.

    Attributes:
        images: final states in [0, 1], in the requested output type ("pt": in the pipeline's dtype).
        snapshots: (K, B, *sample_shape) float32 states in [0, 1] at ``snapshot_steps``, or None.
        snapshot_steps: the step indices of the snapshots.
        acceptance_rate: Metropolis acceptance (MALA, HMC), else None.

    Example::

        out = pipe(batch_size=4, output_type="tensor", snapshot_steps=[0, 9, 99])
        images, snapshots = out.images, out.snapshots        # (4, 1, 32, 32) and (3, 4, 1, 32, 32)
    """

    images: Any
    snapshots: Tensor | None
    snapshot_steps: list[int]
    acceptance_rate: float | None


class EBMPipeline(Pipeline):
    """Sample an :class:`EnergyModel` with an energy sampler, starting from noise or a replay buffer.

    Args:
        energy_model: E(x) for x (B, *energy_model.sample_shape) in [-1, 1]; lower = more likely.
        sampler: an energy sampler (``sgld`` by default in training).
        buffer: the replay buffer of past chains (optional; saved with the pipeline), holding samples of the
            energy model's ``sample_shape``.
        num_inference_steps: default chain length when generating (the book uses 1000 from noise).

    Example::

        pipe = EBMPipeline.from_pretrained("thermogen/ebm-mnist")
        out = pipe(batch_size=8, num_inference_steps=1000, generator=torch.Generator().manual_seed(0))
        out.images                                        # 8 PIL images
        pipe(batch_size=8, initial_state="buffer", num_inference_steps=60, output_type="tensor")
    """

    component_kinds: ClassVar[dict[str, str]] = {
        "energy_model": "models",
        "sampler": "samplers",
        "buffer": "components",
    }
    call_keywords: ClassVar[tuple[str, ...]] = ("batch_size", "initial_state", "output_type", "snapshot_steps")

    conformance: ClassVar[dict[str, Any]] = {
        "components": {
            "energy_model": {"_class_name": "energy_cnn", "image_size": 16, "widths": [4, 8], "hidden": 8},
            "sampler": {"_class_name": "sgld", "num_steps": 3},
        },
        "call": {"num_inference_steps": 3},
    }
    """How the conformance kit builds a small instance and makes images (thermogen.testing.conformance)."""

    def __init__(
        self,
        energy_model: EnergyModel,
        sampler: EnergySampler,
        buffer: ReplayBuffer | None = None,
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
    ) -> None:
        check_positive_int("num_inference_steps", num_inference_steps)
        self.check_components(energy_model=energy_model, sampler=sampler, buffer=buffer)
        if buffer is not None and tuple(buffer.sample_shape) != tuple(energy_model.sample_shape):
            raise ConfigError(
                f"the replay buffer holds samples of shape {tuple(buffer.sample_shape)}, the energy model's are "
                f"{tuple(energy_model.sample_shape)}; expected one shape"
            )
        self.energy_model = energy_model.eval()
        self.sampler = sampler
        self.buffer = buffer
        self.num_inference_steps = num_inference_steps
        self.progress = True

    @classmethod
    def upgrade_saved(
        cls, index: dict[str, Any], configs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """A ``model_index.json`` of thermogen 0.1 names the default chain length ``generation_steps``."""
        if "generation_steps" in index:
            index = dict(index)
            steps = index.pop("generation_steps")
            index.setdefault("num_inference_steps", steps)
        return index, configs

    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: the energy model's ``sample_shape``, e.g. (C, H, W)."""
        return tuple(self.energy_model.sample_shape)

    @overload
    def __call__(
        self,
        batch_size: int = ...,
        num_inference_steps: int | None = ...,
        generator: torch.Generator | None = ...,
        initial_state: Literal["uniform", "buffer"] | Tensor = ...,
        output_type: OutputType = ...,
        callback: Callback | None = ...,
        progress: bool | None = ...,
        return_dict: Literal[True] = ...,
        snapshot_steps: Sequence[int] | None = ...,
    ) -> EBMPipelineOutput: ...

    @overload
    def __call__(
        self,
        batch_size: int = ...,
        num_inference_steps: int | None = ...,
        generator: torch.Generator | None = ...,
        initial_state: Literal["uniform", "buffer"] | Tensor = ...,
        output_type: OutputType = ...,
        callback: Callback | None = ...,
        progress: bool | None = ...,
        *,
        return_dict: Literal[False],
        snapshot_steps: Sequence[int] | None = ...,
    ) -> tuple[Any, ...]: ...

    def __call__(
        self,
        batch_size: int = 16,
        num_inference_steps: int | None = None,
        generator: torch.Generator | None = None,
        initial_state: Literal["uniform", "buffer"] | Tensor = "uniform",
        output_type: OutputType = "pil",
        callback: Callback | None = None,
        progress: bool | None = None,
        return_dict: bool = True,
        snapshot_steps: Sequence[int] | None = None,
        **renamed: Any,
    ) -> EBMPipelineOutput | tuple[Any, ...]:
        """Run ``num_inference_steps`` sampler steps (default: the pipeline's) from ``initial_state``.

        Args:
            batch_size: number of chains; ignored when ``initial_state`` is a tensor.
            num_inference_steps: chain length; None = the pipeline's ``num_inference_steps``.
            generator: one ``torch.Generator`` for the starting points and every step's noise.
            initial_state: "uniform" (U(-1, 1) noise), "buffer" (draws from the replay buffer) or a
                tensor (B, *sample_shape) of starting points in [0, 1].
            output_type: "pil", "np" (images (C, H, W) only) or "pt" / "tensor" (any sample shape).
            callback: ``fn(StepInfo)`` after every step (see :mod:`thermogen.samplers.callbacks`).
            progress: show a progress bar (None = ``self.progress``).
            return_dict: False returns ``out.to_tuple()``, the fields that are not None, as diffusers does.
            snapshot_steps: step indices to keep, e.g. the book's (0, 1, 3, 5, 10, 30, 50, 100, 300, 999).

        Raises:
            TypeError: for the keywords before 1.0, ``steps`` and ``init``, naming the new ones.
        """
        reject_renamed_keywords(
            type(self), renamed, RENAMED_CALL_KEYWORDS, not_here={"eta": "the stochasticity of diffusion samplers"}
        )
        if isinstance(generator, (list, tuple)):
            raise TypeError(
                f"generator is a list of {len(generator)}; EBMPipeline takes one torch.Generator "
                "(energy samplers draw each step's noise for the whole batch at once)"
            )
        check_output_type(output_type, self.sample_shape(), type(self.energy_model).__name__)
        num_steps = self.num_inference_steps if num_inference_steps is None else num_inference_steps
        check_positive_int("num_inference_steps", num_steps)
        start = self._initial(batch_size, initial_state, generator)
        result = self.sampler.sample(
            self.energy_model,
            start,
            num_steps=num_steps,
            generator=generator,
            snapshot_steps=snapshot_steps,
            callback=callback,
            progress=self.progress if progress is None else progress,
        )
        images = to_unit_range(result.sample).to(start.dtype)
        snapshots = None if result.snapshots is None else to_unit_range(result.snapshots)
        output = EBMPipelineOutput(
            to_output(images, output_type), snapshots, result.snapshot_steps, result.acceptance_rate
        )
        return output if return_dict else output.to_tuple()

    @torch.no_grad()
    def energy(self, images: Tensor) -> Tensor:
        """Energy E of samples (B, *sample_shape) in [0, 1]; lower = more like the training data."""
        x = self._check_images(images, "images")
        return self.energy_model(to_signed_range(x)).float()

    # -- helpers -------------------------------------------------------------------

    def _initial(self, batch_size: int, initial_state: str | Tensor, generator: torch.Generator | None) -> Tensor:
        device, dtype = self.device, self.dtype
        if isinstance(initial_state, Tensor):
            return to_signed_range(self._check_images(initial_state, "initial_state")).to(device, dtype)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}; expected a positive integer")
        if initial_state == "uniform":
            shape = (batch_size, *self.sample_shape())
            return to_signed_range(draw_noise(shape, generator, device, dtype, uniform=True))
        if initial_state == "buffer":
            if self.buffer is None or len(self.buffer) == 0:
                raise ValueError(
                    "initial_state='buffer' but this pipeline has no (filled) replay buffer; "
                    "use initial_state='uniform'"
                )
            return self.buffer.sample(batch_size, generator=generator)[0].to(device, dtype)
        raise ValueError(
            f"initial_state={initial_state!r}; expected 'uniform', 'buffer' or a tensor of starting points"
        )

    def _check_images(self, images: Tensor, name: str) -> Tensor:
        check_floating(name, images)
        expected = self.sample_shape()
        if tuple(images.shape[1:]) != expected or images.ndim != len(expected) + 1:
            raise ValueError(f"{name} has shape {tuple(images.shape)}; expected (B, {', '.join(map(str, expected))})")
        check_finite(name, images)
        return images.to(self.device, self.dtype)


RENAMED_CALL_KEYWORDS = {"steps": "num_inference_steps", "init": "initial_state"}
"""Keywords of ``EBMPipeline.__call__`` before 1.0 -> their names now."""
