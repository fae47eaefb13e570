"""Denoising training (the book's DDIM chapter): predict the noise mixed into a clean image.

Each step: normalise a batch x_0, draw t ~ U(0, 1) and eps ~ N(0, I) per image,
form x_t = signal_rate(t) x_0 + noise_rate(t) eps, and regress the network's
prediction at noise level noise_rate(t) onto eps (mean absolute error, as the
book; MSE as an option), or onto v = signal_rate eps - noise_rate x_0, with an
optional Min-SNR-gamma weight per image (:mod:`thermogen.losses.denoising`).
AdamW (lr 1e-3, weight decay 1e-4; optional warm-up and cosine/linear decay, see
:class:`~thermogen.training.lr_schedule.LearningRateSchedule`). An EMA copy of all
weights and buffers (decay 0.999, with a warm-up so that short runs do not keep the
untrained initialisation; see :class:`thermogen.training.ema.EMA`) is what the saved
pipeline samples with; ``ema_power`` replaces it by the power-function EMA
(:class:`thermogen.training.ema.PowerEMA`), whose horizon grows with the run.

Randomness is a pure function of (seed, step) and the data order of
(seed, epoch), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from thermogen.errors import CheckpointError, TrainingDivergedError
from thermogen.losses.denoising import (
    LOSS_WEIGHTINGS,
    PREDICTION_TARGETS,
    LossWeighting,
    PredictionTarget,
    denoising_loss,
    denoising_target,
    snr_weight,
)
from thermogen.pipelines.diffusion import DiffusionPipeline, record_trained_noise_levels
from thermogen.pipelines.images import save_grid
from thermogen.training.batches import gather
from thermogen.training.checkpoint import PIPELINE_DIR, load_checkpoint_state, save_checkpoint
from thermogen.training.distributed import ProcessContext
from thermogen.training.ema import EMA, PowerEMA
from thermogen.training.loop import LoopConfig, TrainingLoop
from thermogen.training.state_checks import check_diffusion_state
from thermogen.weights import load_module_state


@dataclass
class DiffusionTrainingConfig(LoopConfig):
    """Hyper-parameters of :class:`DiffusionTrainer` (book values as defaults, batch per process).

    Example::

        config = DiffusionTrainingConfig(steps=5000, loss="mse", prediction_type="v", loss_weighting="min_snr")
        pipe = build_diffusion_pipeline(images, prediction_type="v")   # the model must output what is trained
        DiffusionTrainer(pipe, images, "runs/v", config).train()
    """

    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    ema_decay: float = 0.999
    ema_warmup: bool = True
    ema_power: float | None = None
    loss: Literal["mae", "mse"] = "mae"
    prediction_type: PredictionTarget = "epsilon"
    loss_weighting: LossWeighting = "none"
    min_snr_gamma: float = 5.0
    sample_images: int = 64
    sample_steps: int = 20
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.sample_steps, int) or self.sample_steps < 1:
            raise ValueError(f"sample_steps={self.sample_steps!r}; expected a positive integer")
        if self.loss not in ("mae", "mse"):
            raise ValueError(f"loss={self.loss!r}; expected 'mae' or 'mse'")
        if self.prediction_type not in PREDICTION_TARGETS:
            raise ValueError(f"prediction_type={self.prediction_type!r}; expected one of {list(PREDICTION_TARGETS)}")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f"loss_weighting={self.loss_weighting!r}; expected one of {list(LOSS_WEIGHTINGS)}")
        if not (isinstance(self.min_snr_gamma, (int, float)) and 0.0 < self.min_snr_gamma < math.inf):
            raise ValueError(f"min_snr_gamma={self.min_snr_gamma!r}; expected a positive finite number")
        if self.ema_power is not None and not (
            isinstance(self.ema_power, (int, float)) and 0.0 < self.ema_power < math.inf
        ):
            raise ValueError(f"ema_power={self.ema_power!r}; expected None or a positive finite number")


class DiffusionTrainer(TrainingLoop):
    """Trains ``pipeline.model`` on ``dataset`` (images (C, H, W) in [0, 1]), writing into ``out_dir``.

    ``pipeline.model`` always holds the EMA weights; the raw training weights
    live in the trainer (and in the checkpoint's trainer state). The model's
    ``prediction_type`` (its config) must be ``config.prediction_type``, the training target.

    Example::

        images = mnist_training_set()                        # 60,000 digits (1, 32, 32) in [0, 1]
        pipe = build_diffusion_pipeline(images)              # the book's U-Net, offset cosine schedule, DDIM
        DiffusionTrainer(pipe, images, "runs/ddim", DiffusionTrainingConfig(steps=5000)).train()
        pipe.save_pretrained("ddim-mnist")                   # pipe.model holds the EMA weights
    """

    config: DiffusionTrainingConfig

    def __init__(
        self,
        pipeline: DiffusionPipeline,
        dataset: Dataset,
        out_dir: str | Path,
        config: DiffusionTrainingConfig | None = None,
        context: ProcessContext | None = None,
    ) -> None:
        super().__init__(dataset, out_dir, config or DiffusionTrainingConfig(), context or ProcessContext())
        if pipeline.model.prediction_type != self.config.prediction_type:
            raise ValueError(
                f"the model outputs prediction_type={pipeline.model.prediction_type!r} (its config), but training "
                f"uses prediction_type={self.config.prediction_type!r}; call "
                f"model.set_prediction_type({self.config.prediction_type!r}) before training"
            )
        self.pipeline = pipeline
        record_trained_noise_levels(pipeline.model, pipeline.schedule)
        device = self.context.device
        pipeline.to(device)
        self.model: nn.Module = copy.deepcopy(pipeline.model).train()
        self.ema = (
            PowerEMA(self.model, self.config.ema_power)
            if self.config.ema_power is not None
            else EMA(self.model, self.config.ema_decay, warmup=self.config.ema_warmup)
        )
        self.pipeline.model = self.ema.model  # type: ignore[assignment]  # a deep copy of a NoisePredictor
        self.model_for_step: nn.Module = self.model
        if self.context.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.model_for_step = DistributedDataParallel(
                self.model, device_ids=[device] if device.type == "cuda" else None
            )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay
        )

    # -- one step ------------------------------------------------------------------

    def loss_on(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The denoising loss on this process's batch of images (B, C, H, W) in [0, 1].

        Noise and times are drawn for the global batch (B x world size) and
        sliced, so N processes with batch B see exactly what one process with
        batch N·B sees.
        """
        x0 = self.pipeline.normalizer.normalize(images.to(self.context.device, torch.float32))
        batch, world, rank = x0.shape[0], self.context.world_size, self.context.rank
        mine = slice(rank * batch, (rank + 1) * batch)
        noise = torch.randn((batch * world, *x0.shape[1:]), generator=generator, device=x0.device)[mine]
        t = torch.rand(batch * world, generator=generator, device=x0.device, dtype=torch.float64)[mine]
        signal_rate, noise_rate = self.pipeline.schedule.rates(t, like=x0)
        noisy = signal_rate * x0 + noise_rate * noise
        with torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision):
            predicted = self.model_for_step(noisy, noise_rate.reshape(batch))
        config = self.config
        target = denoising_target(x0, noise, signal_rate, noise_rate, config.prediction_type)
        weight = snr_weight(
            signal_rate, noise_rate, config.prediction_type, config.loss_weighting, config.min_snr_gamma
        )
        return denoising_loss(predicted, target, weight, config.loss)

    def train_step(self) -> dict[str, Tensor]:
        """One optimizer step on this step's batch, then the EMA update; returns ``{"loss": ...}``."""
        images = gather(self.dataset, self.batches.indices(self.step))
        loss = self.loss_on(images, self.step_generator(per_process=False))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        rate = self.set_learning_rate(self.optimizer)
        self.optimizer.step()
        self.ema.update(self.model, update=self.step)
        self.step += 1
        return {"loss": loss.detach(), "lr": torch.tensor(rate)}

    def check(self, means: dict[str, float]) -> None:
        if not math.isfinite(means["loss"]):
            raise TrainingDivergedError(
                f"loss became {means['loss']} at step {self.step}; the last good checkpoint in "
                f"{self.checkpoint_dir} is kept (lower the learning rate or resume from it)"
            )

    def save_samples(self) -> None:
        """A grid from the EMA pipeline with a fixed seed, as ``samples/step_XXXXXX.png`` (main process only)."""
        if not self.context.is_main:
            return
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed)
        noise = torch.randn((self.config.sample_images, *self.pipeline.sample_shape()), generator=generator)
        images = self.pipeline(
            initial_state=noise, num_inference_steps=self.config.sample_steps, output_type="tensor", progress=False
        ).images
        save_grid(images, self.out_dir / "samples" / f"step_{self.step:06d}.png")

    # -- checkpoints -----------------------------------------------------------------

    def state(self) -> dict[str, object]:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": asdict(self.config),
            "world_size": self.context.world_size,
        }

    def save_checkpoint(self) -> None:
        """Write ``out_dir/checkpoint`` atomically (main process only; others wait)."""
        if self.context.is_main:
            save_checkpoint(self.checkpoint_dir, self.pipeline, self.state())
        self.context.barrier()

    def load_checkpoint(self, directory: str | Path | None = None) -> None:
        """Restore the training state from a checkpoint (any number of processes may have written it)."""
        root = Path(directory) if directory is not None else self.checkpoint_dir
        state = load_checkpoint_state(root)
        check_diffusion_state(self, root, state)  # raises before anything is modified
        try:
            self.model.load_state_dict(state["model"])  # type: ignore[arg-type]
            self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
            self.step = int(state["step"])  # type: ignore[call-overload]
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{root} does not match this model or optimizer: {exc}") from exc
        load_module_state(self.ema.model, root / PIPELINE_DIR / "model" / "model.safetensors")
        self.log.truncate_after(self.step)
