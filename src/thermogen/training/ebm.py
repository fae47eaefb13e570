"""Contrastive divergence with a replay buffer (the book's EBM chapter, with Lippe's stabilisers).

Each step:

1. real images x+ (in [-1, 1]) get N(0, 0.005²) noise and are clipped;
2. fakes x- are drawn from the replay buffer (about 5 % fresh uniform noise)
   and refined by 60 steps of the book's Langevin sampler, then written back;
3. loss = mean E(x+) - mean E(x-) + alpha * mean(E(x+)² + E(x-)²), alpha = 0.1
   (:func:`thermogen.losses.contrastive_divergence_loss`; the book's network outputs
   f = -E, so this is its ``fake - real`` loss);
4. Adam (lr 1e-4, betas (0.0, 0.999)) with the parameter-gradient norm clipped
   at 0.1 (Lippe's defaults, where the book is unstable).

Logged per step window: loss, reg, cdiv, mean real and fake energy. The
replay buffer is per process (each rank refines its own chains); every rank's
buffer is saved in the checkpoint so a resume restores all of them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import Dataset

from thermogen.buffers import ReplayBuffer
from thermogen.errors import CheckpointError, TrainingDivergedError
from thermogen.interfaces import EnergyModel
from thermogen.losses.contrastive_divergence import contrastive_divergence_loss
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.pipelines.images import save_grid
from thermogen.pixels import to_unit_range
from thermogen.training.batches import gather
from thermogen.training.checkpoint import PIPELINE_DIR, load_checkpoint_state, save_checkpoint
from thermogen.training.distributed import ProcessContext
from thermogen.training.loop import LoopConfig, TrainingLoop
from thermogen.training.state_checks import check_ebm_state
from thermogen.weights import load_module_state


@dataclass
class EBMTrainingConfig(LoopConfig):
    """Hyper-parameters of :class:`EBMTrainer` (book / Lippe values as defaults, batch per process).

    Example::

        config = EBMTrainingConfig(steps=2000, batch_size=64, alpha=0.05)
        EBMTrainer(build_ebm_pipeline((1, 32, 32)), mnist_training_set(preprocess="ebm"), "runs/ebm", config).train()
    """

    steps: int = 468
    batch_size: int = 128
    log_every: int = 20
    checkpoint_every: int = 200
    sample_every: int = 200
    learning_rate: float = 1e-4
    beta1: float = 0.0
    beta2: float = 0.999
    grad_clip: float = 0.1
    alpha: float = 0.1
    real_noise: float = 0.005
    langevin_steps: int = 60
    energy_bound: float = 1e3
    sample_images: int = 16
    sample_chain_steps: int = 1000
    mixed_precision: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.langevin_steps, int) or self.langevin_steps < 1:
            raise ValueError(f"langevin_steps={self.langevin_steps!r}; expected a positive integer")
        if self.energy_bound <= 0:
            raise ValueError(f"energy_bound={self.energy_bound}; expected a positive number")


class EBMTrainer(TrainingLoop):
    """Trains ``pipeline.energy_model`` on ``dataset`` (images (C, H, W) in [-1, 1]) into ``out_dir``.

    Example::

        pipe = EBMPipeline(EnergyCNN(), SGLDSampler(), ReplayBuffer(sample_shape=(1, 32, 32)))
        trainer = EBMTrainer(pipe, MNIST(split="train", preprocess="ebm"), "runs/mine", EBMTrainingConfig())
        trainer.train()                                      # contrastive divergence, checkpoints, samples
    """

    config: EBMTrainingConfig

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
        super().__init__(dataset, out_dir, config or EBMTrainingConfig(), context or ProcessContext())
        self.pipeline = pipeline
        self.buffer: ReplayBuffer = pipeline.buffer
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

    # -- one step ------------------------------------------------------------------

    def train_step(self) -> dict[str, Tensor]:
        """One contrastive-divergence step; returns the step's metrics as tensors (no sync)."""
        config, device = self.config, self.context.device
        generator = self.step_generator(per_process=True)
        real = gather(self.dataset, self.batches.indices(self.step)).to(device)
        real = (real + config.real_noise * torch.randn(real.shape, generator=generator, device=device)).clamp(-1.0, 1.0)
        start, _ = self.buffer.sample(config.batch_size, generator=generator)
        fake = self.pipeline.sampler.sample(
            self.model, start.to(device), num_steps=config.langevin_steps, generator=generator
        ).sample
        self.buffer.push(fake)

        self.model.train()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.mixed_precision):
            energies = self.model_for_loss(torch.cat([real, fake.detach()])).float()
        real_energy, fake_energy = energies.chunk(2)
        terms = contrastive_divergence_loss(real_energy, fake_energy, alpha=config.alpha)
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        rate = self.set_learning_rate(self.optimizer)
        self.optimizer.step()
        self.step += 1
        return {
            "loss": terms.loss.detach(),
            "reg": terms.reg.detach(),
            "cdiv": terms.cdiv.detach(),
            "real": terms.real_energy.detach(),
            "fake": terms.fake_energy.detach(),
            "lr": torch.tensor(rate),
        }

    def check(self, means: dict[str, float]) -> None:
        exploded = max(abs(means["real"]), abs(means["fake"])) > self.config.energy_bound
        if not all(math.isfinite(v) for v in means.values()) or exploded:
            raise TrainingDivergedError(
                f"energies diverged at step {self.step} (real {means['real']:.4g}, fake {means['fake']:.4g}, "
                f"bound {self.config.energy_bound}); the last good checkpoint in {self.checkpoint_dir} "
                "is kept: resume from it with a lower learning rate or more Langevin steps"
            )

    def save_samples(self) -> None:
        """Grids of fresh chains from noise and of buffer samples (main process only)."""
        if not self.context.is_main:
            return
        generator = torch.Generator(device=self.context.device).manual_seed(self.config.seed + 1)
        fresh = self.pipeline(
            batch_size=self.config.sample_images,
            num_inference_steps=self.config.sample_chain_steps,
            generator=generator,
            output_type="tensor",
            progress=False,
        ).images
        save_grid(fresh, self.out_dir / "samples" / f"step_{self.step:06d}_chains.png", nrow=8)
        buffered, _ = self.buffer.sample(self.config.sample_images, generator=generator)
        save_grid(to_unit_range(buffered), self.out_dir / "samples" / f"step_{self.step:06d}_buffer.png", nrow=8)

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
            save_checkpoint(self.checkpoint_dir, self.pipeline, state)
        self.context.barrier()

    def load_checkpoint(self, directory: str | Path | None = None) -> None:
        """Restore model (from the pipeline), optimizer, step and this rank's buffer.

        With more processes than wrote the checkpoint, rank r takes buffer r mod N.
        """
        root = Path(directory) if directory is not None else self.checkpoint_dir
        state = load_checkpoint_state(root)
        check_ebm_state(self, root, state)  # raises before anything is modified
        try:
            load_module_state(self.model, root / PIPELINE_DIR / "energy_model" / "model.safetensors")
            self.optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            buffers = state["buffers"]
            self.buffer.load_state_tensors(buffers[self.context.rank % len(buffers)], source=str(root))
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{root} does not match this model, optimizer or buffer: {exc}") from exc
        self.log.truncate_after(self.step)
