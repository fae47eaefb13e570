"""Denoising training (the book's DDIM chapter): predict the noise mixed into a clean image.

Each step: normalise a batch x_0, draw t ~ U(0, 1) and eps ~ N(0, I) per image,
form x_t = signal_rate(t) x_0 + noise_rate(t) eps, and regress the network's
prediction at noise level noise_rate(t) onto eps (mean absolute error, as the
book; MSE as an option). AdamW (lr 1e-3, weight decay 1e-4); an EMA copy of
all weights and buffers (decay 0.999, with a warm-up so that short runs do not
keep the untrained initialisation; see :class:`thermogen.training.ema.EMA`) is
what the saved pipeline samples with.

Randomness is a pure function of (seed, step) and the data order of
(seed, epoch), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from thermogen.errors import CheckpointError, TrainingDivergedError
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.images import save_grid
from thermogen.training.batches import EpochBatches, gather
from thermogen.training.checkpoint import PIPELINE_DIR, load_checkpoint_state, save_checkpoint
from thermogen.training.distributed import ProcessContext
from thermogen.training.ema import EMA
from thermogen.training.log import TrainingLog
from thermogen.weights import load_module_state

CHECKPOINT_DIR = "checkpoint"


@dataclass
class DiffusionTrainingConfig:
    """Hyper-parameters of :class:`DiffusionTrainer` (book values as defaults, batch per process)."""

    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    ema_decay: float = 0.999
    ema_warmup: bool = True
    loss: Literal["mae", "mse"] = "mae"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    sample_every: int = 500
    sample_images: int = 64
    sample_steps: int = 20
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "sample_every", "sample_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        if self.loss not in ("mae", "mse"):
            raise ValueError(f"loss={self.loss!r}; expected 'mae' or 'mse'")


class DiffusionTrainer:
    """Trains ``pipeline.model`` on ``dataset`` (images (C, H, W) in [0, 1]), writing into ``out_dir``.

    ``pipeline.model`` always holds the EMA weights; the raw training weights
    live in the trainer (and in the checkpoint's trainer state).
    """

    def __init__(
        self,
        pipeline: DiffusionPipeline,
        dataset: Dataset,
        out_dir: str | Path,
        config: DiffusionTrainingConfig | None = None,
        context: ProcessContext | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.config = config or DiffusionTrainingConfig()
        self.context = context or ProcessContext()
        device = self.context.device
        pipeline.to(device)
        self.model: nn.Module = copy.deepcopy(pipeline.model).train()
        self.ema = EMA(self.model, self.config.ema_decay, warmup=self.config.ema_warmup)
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
        self.batches = EpochBatches(
            len(dataset),  # type: ignore[arg-type]
            self.config.batch_size,
            seed=self.config.seed,
            rank=self.context.rank,
            world_size=self.context.world_size,
        )
        self.step = 0
        self.log = TrainingLog(self.out_dir / "log.jsonl", enabled=self.context.is_main)

    # -- one step ------------------------------------------------------------------

    def _generator(self) -> torch.Generator:
        """The step's randomness, the same on every process (each takes its slice of the global batch)."""
        generator = torch.Generator(device=self.context.device)
        generator.manual_seed(self.config.seed * 1_000_003 * 1_000_000_007 + self.step)
        return generator

    def loss_on(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """The denoising loss on this process's batch of images (B, C, H, W) in [0, 1].

        Noise and times are drawn for the global batch (B x world size) and
        sliced, so N processes with batch B see exactly what one process with
        batch N·B sees.
        """
        x0 = self.pipeline.normalizer.normalize(images.to(self.context.device, torch.float32))
        batch, world, rank = x0.shape[0], self.context.world_size, self.context.rank
        noise = torch.randn((batch * world, *x0.shape[1:]), generator=generator, device=x0.device)[
            rank * batch : (rank + 1) * batch
        ]
        t = torch.rand(batch * world, generator=generator, device=x0.device, dtype=torch.float64)[
            rank * batch : (rank + 1) * batch
        ]
        signal_rate, noise_rate = self.pipeline.schedule.rates(t, like=x0)
        noisy = signal_rate * x0 + noise_rate * noise
        with torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision):
            predicted = self.model_for_step(noisy, noise_rate.reshape(batch))
        predicted = predicted.float()
        if self.config.loss == "mae":
            return F.l1_loss(predicted, noise)
        return F.mse_loss(predicted, noise)

    def train_step(self) -> Tensor:
        """One optimizer step on this step's batch; returns the loss (a tensor, no sync)."""
        images = gather(self.dataset, self.batches.indices(self.step))
        loss = self.loss_on(images, self._generator())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.ema.update(self.model, update=self.step)
        self.step += 1
        return loss.detach()

    # -- the loop ------------------------------------------------------------------

    def train(self, progress: bool = True) -> DiffusionPipeline:
        """Train until ``config.steps``; checkpoint, log and sample on schedule; return the EMA pipeline."""
        from tqdm.auto import tqdm

        config = self.config
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc="train diffusion",
            disable=not (progress and self.context.is_main),
        )
        loss_sum = torch.zeros((), device=self.context.device)
        window_start, window_steps = time.perf_counter(), 0
        while self.step < config.steps:
            loss_sum += self.train_step()
            window_steps += 1
            bar.update(1)
            if self.step % config.log_every == 0 or self.step == config.steps:
                mean_loss = float(loss_sum) / window_steps
                if not torch.isfinite(loss_sum):
                    raise TrainingDivergedError(
                        f"loss became {mean_loss} at step {self.step}; the last good checkpoint in "
                        f"{self.out_dir / CHECKPOINT_DIR} is kept (lower the learning rate or resume from it)"
                    )
                elapsed = time.perf_counter() - window_start
                images_per_s = window_steps * config.batch_size * self.context.world_size / elapsed
                self.log.write(step=self.step, loss=mean_loss, images_per_s=images_per_s)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                loss_sum.zero_()
                window_start, window_steps = time.perf_counter(), 0
            if self.step % config.sample_every == 0 or self.step == config.steps:
                self.save_samples()
            if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                self.save_checkpoint()
        bar.close()
        return self.pipeline

    def save_samples(self) -> Path | None:
        """A grid from the EMA pipeline with a fixed seed, as ``samples/step_XXXXXX.png`` (main process only)."""
        if not self.context.is_main:
            return None
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed)
        noise = torch.randn((self.config.sample_images, *self.pipeline.sample_shape()), generator=generator)
        images = self.pipeline(
            initial_noise=noise, num_inference_steps=self.config.sample_steps, output_type="tensor", progress=False
        ).images
        return save_grid(images, self.out_dir / "samples" / f"step_{self.step:06d}.png")

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
            save_checkpoint(self.out_dir / CHECKPOINT_DIR, self.pipeline, self.state())
        self.context.barrier()

    def load_checkpoint(self, directory: str | Path | None = None) -> None:
        """Restore the training state from a checkpoint (any number of processes may have written it)."""
        root = Path(directory) if directory is not None else self.out_dir / CHECKPOINT_DIR
        state = load_checkpoint_state(root)
        try:
            self.model.load_state_dict(state["model"])  # type: ignore[arg-type]
            self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
            for group in self.optimizer.param_groups:  # the configured rate wins, so a resume can lower it
                group["lr"] = self.config.learning_rate
            self.step = int(state["step"])  # type: ignore[call-overload]
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{root} does not match this model or optimizer: {exc}") from exc
        load_module_state(self.ema.model, root / PIPELINE_DIR / "model" / "model.safetensors")
        self.log.truncate_after(self.step)


def describe(config: DiffusionTrainingConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True)
