"""Which examples each step trains on: reshuffled per epoch, derived from (seed, step).

Because the order is a pure function of the seed and the step, resuming at
step ``s`` continues with exactly the batches an uninterrupted run would have
seen, and under distributed training each process takes its own shard of the
same permutation.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset


class EpochBatches:
    """Batch indices for step ``s``: epoch ``s // steps_per_epoch`` of a seeded permutation, drop_last.

    Args:
        num_items: dataset size.
        batch_size: examples per process and step.
        seed: base seed; epoch ``e`` uses permutation seed ``seed + e``.
        rank: this process's index in [0, world_size).
        world_size: number of processes; one step consumes ``batch_size * world_size`` items.

    Example::

        batches = EpochBatches(num_items=60_000, batch_size=64, seed=0)   # steps_per_epoch = 937
        images = gather(dataset, batches.indices(step))      # (64, ...); the same batch at this step after a resume
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        global_batch = batch_size * world_size
        if batch_size < 1 or num_items < global_batch:
            raise ValueError(
                f"batch_size={batch_size} x {world_size} processes needs at least that many examples; "
                f"dataset has {num_items}"
            )
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.steps_per_epoch = num_items // global_batch
        self._epoch = -1
        self._permutation = torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._permutation = torch.randperm(self.num_items, generator=generator)
            self._epoch = epoch
        start = (position * self.world_size + self.rank) * self.batch_size
        return self._permutation[start : start + self.batch_size]


def gather(dataset: Dataset, indices: Tensor) -> Tensor:
    """Stack ``dataset[i]`` for the indices; uses ``dataset.images`` directly when it has one (fast path)."""
    images = getattr(dataset, "images", None)
    if isinstance(images, Tensor):
        return images[indices]
    items = [dataset[int(i)] for i in indices]
    return torch.stack([item[0] if isinstance(item, tuple) else item for item in items])
