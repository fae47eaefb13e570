"""The schedule every trainer shares: steps, log windows, sample grids, checkpoints, divergence checks.

A trainer subclasses :class:`TrainingLoop` and implements :meth:`~TrainingLoop.train_step`
(one optimizer step, returning its metrics as tensors so that nothing syncs
with the device), :meth:`~TrainingLoop.check` (divergence), :meth:`~TrainingLoop.save_samples`
and :meth:`~TrainingLoop.save_checkpoint`.
"""

from __future__ import annotations

import math
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from thermogen.atomic import atomic_directory
from thermogen.training.batches import EpochBatches
from thermogen.training.checkpoint import PIPELINE_DIR
from thermogen.training.distributed import ProcessContext
from thermogen.training.log import TrainingLog
from thermogen.training.lr_schedule import LearningRateSchedule

CHECKPOINT_DIR = "checkpoint"
SNAPSHOTS_DIR = "snapshots"


@dataclass
class LoopConfig:
    """What every trainer's config has (batch per process).

    The learning rate follows :class:`~thermogen.training.lr_schedule.LearningRateSchedule`:
    ``lr_warmup_steps`` of linear warm-up, then ``learning_rate`` until
    ``lr_decay_start``, then a ``lr_decay`` ("none", "cosine" or "linear") down to
    ``lr_final_ratio * learning_rate`` at ``steps``.

    ``snapshot_every`` (0 = off; a multiple of ``checkpoint_every``) keeps a copy of the
    checkpoint's pipeline every that many steps as ``OUT/snapshots/step_NNNNNN``: the
    material of a post-hoc weight average (:mod:`thermogen.pipelines.averaging`).

    Example::

        config = LoopConfig(steps=10_000, lr_warmup_steps=500, lr_decay="cosine", lr_decay_start=5_000)
        rates = config.learning_rate_schedule()
        rates.rate(0), rates.rate(499), rates.rate(9_999)    # 2e-06, 0.001 (warm-up done), about 0
    """

    steps: int = 2000
    batch_size: int = 64
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    sample_every: int = 500
    learning_rate: float = 1e-3
    lr_decay: Literal["none", "cosine", "linear"] = "none"
    lr_decay_start: int = 0
    lr_final_ratio: float = 0.0
    lr_warmup_steps: int = 0
    snapshot_every: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "sample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r}; expected a positive integer")
        every = self.snapshot_every
        if not isinstance(every, int) or isinstance(every, bool) or every < 0 or every % self.checkpoint_every:
            raise ValueError(
                f"snapshot_every={every!r}; expected 0 (off) or a positive multiple of "
                f"checkpoint_every={self.checkpoint_every}"
            )
        self.learning_rate_schedule()  # validates the learning-rate fields

    def learning_rate_schedule(self) -> LearningRateSchedule:
        """The learning rate per step that these fields describe."""
        return LearningRateSchedule(
            base=self.learning_rate,
            total_steps=self.steps,
            decay=self.lr_decay,
            decay_start=self.lr_decay_start,
            final_ratio=self.lr_final_ratio,
            warmup_steps=self.lr_warmup_steps,
        )


class TrainingLoop(ABC):
    """Runs ``train_step`` until ``config.steps``; logs, samples and checkpoints on schedule.

    Only the main process writes (see :class:`ProcessContext`); every process
    takes its shard of the same seeded per-epoch permutation (:class:`EpochBatches`).

    Example::

        class MyTrainer(TrainingLoop):                       # and check, save_samples, save/load_checkpoint
            def train_step(self) -> dict[str, Tensor]:
                images = gather(self.dataset, self.batches.indices(self.step))
                loss = ...                                   # backward, self.set_learning_rate(optimizer), step
                self.step += 1
                return {"loss": loss.detach()}               # tensors: nothing waits for the device

        MyTrainer(dataset, "runs/mine", LoopConfig(steps=1000), ProcessContext()).train()
    """

    def __init__(self, dataset: Dataset, out_dir: str | Path, config: LoopConfig, context: ProcessContext) -> None:
        self.dataset = dataset
        self.out_dir = Path(out_dir)
        self.config = config
        self.context = context
        self.batches = EpochBatches(
            len(dataset),  # type: ignore[arg-type]
            config.batch_size,
            seed=config.seed,
            rank=context.rank,
            world_size=context.world_size,
        )
        self.step = 0
        self.learning_rates = config.learning_rate_schedule()
        self.log = TrainingLog(self.out_dir / "log.jsonl", enabled=context.is_main)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / CHECKPOINT_DIR

    @abstractmethod
    def train_step(self) -> dict[str, Tensor]:
        """One optimizer step on this step's batch; metrics as 0-dim tensors (no sync); advances ``step``."""

    @abstractmethod
    def check(self, means: dict[str, float]) -> None:
        """Raise :class:`thermogen.errors.TrainingDivergedError` if the window's mean metrics show divergence."""

    @abstractmethod
    def save_samples(self) -> None:
        """Write sample grids for the current step (main process only)."""

    @abstractmethod
    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (main process; the others wait)."""

    @abstractmethod
    def load_checkpoint(self, directory: str | Path | None = None) -> None:
        """Restore the training state (default: ``out_dir/checkpoint``); the log is cut back to its step."""

    def train(
        self, progress: bool = True, time_budget_s: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        """Train until ``config.steps``; log every ``log_every``, sample and checkpoint on their schedules.

        With ``time_budget_s``, stop after the first step that ends past that many seconds of
        ``clock`` (wall time by default; ``time.process_time`` counts this process's CPU time,
        which other processes on the machine do not change), writing a checkpoint there so a
        later resume continues exactly; the learning-rate schedule still refers to ``config.steps``.
        """
        from tqdm.auto import tqdm

        config = self.config
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc=type(self).__name__,
            disable=not (progress and self.context.is_main),
        )
        sums: dict[str, Tensor] = {}
        window_start, window_steps = time.perf_counter(), 0
        deadline = math.inf if time_budget_s is None else clock() + time_budget_s
        if self._snapshot_due() and not self.snapshot_dir(self.step).exists() and self.checkpoint_dir.exists():
            self.save_snapshot()  # a resume from a checkpoint whose snapshot a stop cut off
        while self.step < config.steps:
            for key, value in self.train_step().items():
                sums[key] = sums[key] + value if key in sums else value.clone()
            window_steps += 1
            bar.update(1)
            out_of_time = time_budget_s is not None and self.context.any(clock() > deadline)
            last = self.step == config.steps or out_of_time
            if self.step % config.log_every == 0 or last:
                means = {key: float(value) / window_steps for key, value in sums.items()}
                self.check(means)
                elapsed = time.perf_counter() - window_start
                images_per_s = window_steps * config.batch_size * self.context.world_size / elapsed
                self.log.write(step=self.step, images_per_s=images_per_s, **means)
                bar.set_postfix({key: f"{value:.4f}" for key, value in means.items()})
                sums, window_start, window_steps = {}, time.perf_counter(), 0
            if self.step % config.sample_every == 0 or last:
                self.save_samples()
            if self.step % config.checkpoint_every == 0 or last:
                self.save_checkpoint()
                if self._snapshot_due():
                    self.save_snapshot()
            if out_of_time:
                break
        bar.close()

    def _snapshot_due(self) -> bool:
        every = self.config.snapshot_every
        return bool(every) and self.step > 0 and self.step % every == 0

    def snapshot_dir(self, step: int) -> Path:
        """Where the snapshot of ``step`` goes: ``OUT/snapshots/step_NNNNNN``."""
        return self.out_dir / SNAPSHOTS_DIR / f"step_{step:06d}"

    def save_snapshot(self) -> None:
        """Copy the just-written checkpoint's pipeline to :meth:`snapshot_dir` atomically (main process)."""
        if self.context.is_main:
            with atomic_directory(self.snapshot_dir(self.step)) as tmp:
                shutil.copytree(self.checkpoint_dir / PIPELINE_DIR, tmp, dirs_exist_ok=True)
        self.context.barrier()

    def step_generator(self, per_process: bool) -> torch.Generator:
        """Randomness for the current step: a pure function of (seed, step), and of the rank if ``per_process``."""
        rank = self.context.rank if per_process else 0
        generator = torch.Generator(device=self.context.device)
        generator.manual_seed((self.config.seed * 1_000_003 + rank) * 1_000_000_007 + self.step)
        return generator

    def set_learning_rate(self, optimizer: torch.optim.Optimizer) -> float:
        """Set every parameter group's rate for the current step and return it.

        The configured schedule wins over a loaded optimizer state, so a resume can change it.
        """
        rate = self.learning_rates.rate(self.step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        return rate
