"""Contrastive divergence with a replay buffer (the book's EBM chapter, with Lippe's stabilisers).

Each step:

1. real images x+ (in [-1, 1]) get N(0, 0.005²) noise and are clipped;
2. fakes x- are drawn from the replay buffer (about 5 % fresh uniform noise)
   and refined by 60 steps of the book's Langevin sampler, then written back;
3. loss = mean E(x+) - mean E(x-) + alpha * mean(E(x+)² + E(x-)²), alpha = 0.1
   (the book's network outputs f = -E, so this is its ``fake - real`` loss);
4. Adam (lr 1e-4, betas (0.0, 0.999)) with the parameter-gradient norm clipped
   at 0.1 (Lippe's defaults, where the book is unstable).

Logged per step window: loss, reg, cdiv, mean real and fake energy. The
replay buffer is per process (each rank refines its own chains); every rank's
buffer is saved in the checkpoint so a resume restores all of them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset

from thermogen.errors import CheckpointError, TrainingDivergedError
from thermogen.interfaces import EnergyModel
from thermogen.pipelines.ebm import EBMPipeline, to_unit
from thermogen.pipelines.images import save_grid
from thermogen.training.batches import EpochBatches, gather
from thermogen.training.checkpoint import load_checkpoint_state, save_checkpoint
from thermogen.training.distributed import ProcessContext
from thermogen.training.log import TrainingLog

CHECKPOINT_DIR = "checkpoint"


@dataclass
class EBMTrainingConfig:
    """Hyper-parameters of :class:`EBMTrainer` (book / Lippe values as defaults, batch per process)."""

    steps: int = 468
    batch_size: int = 128
    learning_rate: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.999
    grad_clip: float = 0.1
    alpha: float = 0.1
    real_noise: float = 0.005
    langevin_steps: int = 60
    energy_bound: float = 1e3
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 200
    sample_every: int = 200
    sample_images: int = 16
    sample_chain_steps: int = 1000
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "langevin_steps", "log_every", "checkpoint_every", "sample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        if self.energy_bound <= 0:
            raise ValueError(f"energy_bound={self.energy_bound}; expected a positive number")


class EBMTrainer:
    """Trains ``pipeline.energy_model`` on ``dataset`` (images (C, H, W) in [-1, 1]) into ``out_dir``."""

    def __init__(
        self,
        pipeline: EBMPipeline,
        dataset: Dataset,
        out_dir: str | Path,
        config: EBMTrainingConfig | None = None,
        context: ProcessContext | None = None,
    ) -> None:
        if pipeline.buffer is None:
            raise ValueError("EBM training needs a pipeline with a replay buffer")
        self.pipeline = pipeline
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.config = config or EBMTrainingConfig()
        self.context = context or ProcessContext()
        pipeline.to(self.context.device)
        self.model: EnergyModel = pipeline.energy_model
        self.model_for_loss: nn.Module = self.model
        if self.context.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device = self.context.device
            self.model_for_loss = DistributedDataParallel(
                self.model, device_ids=[device] if device.type == "cuda" else None
            )
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=self.config.learning_rate, betas=(self.config.beta1, self.config.beta2)
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

    @property
    def buffer(self) -> Any:
        return self.pipeline.buffer

    def _generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.context.device)
        generator.manual_seed((self.config.seed * 1_000_003 + self.context.rank) * 1_000_000_007 + self.step)
        return generator

    # -- one step ------------------------------------------------------------------

    def train_step(self) -> dict[str, Tensor]:
        """One contrastive-divergence step; returns the step's metrics as tensors (no sync)."""
        config, device = self.config, self.context.device
        generator = self._generator()
        real = gather(self.dataset, self.batches.indices(self.step)).to(device)
        real = (real + config.real_noise * torch.randn(real.shape, generator=generator, device=device)).clamp(-1.0, 1.0)
        start, _ = self.buffer.sample(config.batch_size, generator=generator)
        fake = self.pipeline.sampler.sample(
            self.model, start.to(device), steps=config.langevin_steps, generator=generator
        ).sample
        self.buffer.push(fake)

        self.model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.mixed_precision):
            energies = self.model_for_loss(torch.cat([real, fake.detach()])).float()
        real_energy, fake_energy = energies.chunk(2)
        cdiv = real_energy.mean() - fake_energy.mean()
        reg = config.alpha * (real_energy**2 + fake_energy**2).mean()
        loss = cdiv + reg
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.optimizer.step()
        self.step += 1
        return {
            "loss": loss.detach(),
            "reg": reg.detach(),
            "cdiv": cdiv.detach(),
            "real": real_energy.detach().mean(),
            "fake": fake_energy.detach().mean(),
        }

    # -- the loop ------------------------------------------------------------------

    def train(self, progress: bool = True) -> EBMPipeline:
        """Train until ``config.steps``; checkpoint, log and sample on schedule."""
        from tqdm.auto import tqdm

        config = self.config
        bar = tqdm(
            total=config.steps, initial=self.step, desc="train ebm", disable=not (progress and self.context.is_main)
        )
        sums: dict[str, Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        while self.step < config.steps:
            metrics = self.train_step()
            for key, value in metrics.items():
                sums[key] = sums.get(key, torch.zeros((), device=value.device)) + value
            window_steps += 1
            bar.update(1)
            if self.step % config.log_every == 0 or self.step == config.steps:
                means = {k: float(v) / window_steps for k, v in sums.items()}
                self._check_divergence(means)
                elapsed = time.perf_counter() - window_start
                images_per_s = window_steps * config.batch_size * self.context.world_size / elapsed
                self.log.write(step=self.step, images_per_s=images_per_s, **means)
                bar.set_postfix(loss=f"{means['loss']:.4f}", real=f"{means['real']:.3f}", fake=f"{means['fake']:.3f}")
                sums, window_start, window_steps = {}, time.perf_counter(), 0
            if self.step % config.sample_every == 0 or self.step == config.steps:
                self.save_samples()
            if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                self.save_checkpoint()
        bar.close()
        return self.pipeline

    def _check_divergence(self, means: dict[str, float]) -> None:
        values = torch.tensor(list(means.values()))
        exploded = max(abs(means["real"]), abs(means["fake"])) > self.config.energy_bound
        if not torch.isfinite(values).all() or exploded:
            raise TrainingDivergedError(
                f"energies diverged at step {self.step} (real {means['real']:.4g}, fake {means['fake']:.4g}, "
                f"bound {self.config.energy_bound}); the last good checkpoint in {self.out_dir / CHECKPOINT_DIR} "
                "is kept: resume from it with a lower learning rate or more Langevin steps"
            )

    def save_samples(self) -> None:
        """Grids of fresh chains from noise and of buffer samples (main process only)."""
        if not self.context.is_main:
            return
        generator = torch.Generator(device=self.context.device).manual_seed(self.config.seed + 1)
        fresh = self.pipeline(
            batch_size=self.config.sample_images,
            steps=self.config.sample_chain_steps,
            generator=generator,
            output_type="tensor",
            progress=False,
        ).images
        save_grid(fresh, self.out_dir / "samples" / f"step_{self.step:06d}_chains.png", nrow=8)
        buffered, _ = self.buffer.sample(self.config.sample_images, generator=generator)
        save_grid(to_unit(buffered), self.out_dir / "samples" / f"step_{self.step:06d}_buffer.png", nrow=8)

    # -- checkpoints -----------------------------------------------------------------

    def _all_buffers(self) -> list[dict[str, Tensor]]:
        """Every rank's buffer state (gathered to all ranks; rank 0 writes them)."""
        mine = self.buffer.state_tensors()
        if not self.context.distributed:
            return [mine]
        gathered: list[dict[str, Tensor]] = [{} for _ in range(self.context.world_size)]
        dist.all_gather_object(gathered, {k: v.cpu() for k, v in mine.items()})
        return gathered

    def save_checkpoint(self) -> None:
        """Write ``out_dir/checkpoint`` atomically (rank 0; the pipeline holds rank 0's buffer)."""
        buffers = self._all_buffers()
        if self.context.is_main:
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "config": asdict(self.config),
                "world_size": self.context.world_size,
                "buffers": buffers,
            }
            save_checkpoint(self.out_dir / CHECKPOINT_DIR, self.pipeline, state)
        self.context.barrier()

    def load_checkpoint(self, directory: str | Path | None = None) -> None:
        """Restore model (from the pipeline), optimizer, step and this rank's buffer.

        With more processes than wrote the checkpoint, rank r takes buffer r mod N.
        """
        from thermogen.training.checkpoint import PIPELINE_DIR
        from thermogen.weights import load_module_state

        root = Path(directory) if directory is not None else self.out_dir / CHECKPOINT_DIR
        state = load_checkpoint_state(root)
        try:
            load_module_state(self.model, root / PIPELINE_DIR / "energy_model" / "model.safetensors")
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # the configured rate wins, so a resume can lower it
                group["lr"] = self.config.learning_rate
            self.step = int(state["step"])
            buffers = state["buffers"]
            self.buffer.load_state_tensors(buffers[self.context.rank % len(buffers)], source=str(root))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{root} does not match this model, optimizer or buffer: {exc}") from exc
        self.log.truncate_after(self.step)
