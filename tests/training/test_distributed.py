"""Distributed data parallel on CPU (gloo, 2 processes): identical parameters, batch equivalence, N -> M resume."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from image_sets import Images

from thermogen.buffers import ReplayBuffer
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
from thermogen.training.distributed import ProcessContext, init_process
from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig

STEPS = 3
BATCH = 4


def images(n: int = 32, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(0))


def diffusion_pipeline() -> DiffusionPipeline:
    torch.manual_seed(0)
    model = UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4, norm="group")
    return DiffusionPipeline(model, OffsetCosineSchedule(), DDIMSampler(spacing="uniform"), Normalizer([0.5], [0.3]))


def ebm_pipeline() -> EBMPipeline:
    model = EnergyCNN(1, 8, widths=(4, 8), hidden=8)
    model.reset_parameters(torch.Generator().manual_seed(0))
    return EBMPipeline(model, SGLDSampler(num_steps=3), ReplayBuffer(capacity=32, sample_shape=(1, 8, 8)))


def diffusion_config(batch: int, steps: int = STEPS) -> DiffusionTrainingConfig:
    return DiffusionTrainingConfig(steps=steps, batch_size=batch, log_every=1, checkpoint_every=100, sample_every=100)


def ebm_config(steps: int = STEPS) -> EBMTrainingConfig:
    return EBMTrainingConfig(
        steps=steps, batch_size=BATCH, langevin_steps=3, log_every=1, checkpoint_every=100, sample_every=100
    )


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def assert_same_on_every_rank(tensor: torch.Tensor) -> None:
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor)
    for other in gathered[1:]:
        assert torch.equal(other, gathered[0])


def worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    context = init_process("cpu")
    try:
        trainer = DiffusionTrainer(
            diffusion_pipeline(), Images(images()), Path(out) / "diffusion", diffusion_config(BATCH), context
        )
        for _ in range(STEPS):
            trainer.train_step()
            assert_same_on_every_rank(flat_parameters(trainer.model))
            assert_same_on_every_rank(flat_parameters(trainer.ema.model))
        trainer.save_checkpoint()

        ebm = EBMTrainer(ebm_pipeline(), Images(images() * 2 - 1), Path(out) / "ebm", ebm_config(), context)
        for _ in range(STEPS):
            ebm.train_step()
            assert_same_on_every_rank(flat_parameters(ebm.model))
        ebm.save_checkpoint()
        (Path(out) / f"buffer_rank{rank}.txt").write_text(repr(float(ebm.buffer.storage.sum())))
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SPAWN_TIMEOUT_S = 300.0
"""A hung rendezvous or collective fails the test after this long instead of blocking the suite."""


def spawn_two_workers(out: Path, attempts: int = 3) -> None:
    """Run :func:`worker` on two processes; a new port if another program took ours, a deadline on the whole run.

    ``free_port`` closes its socket before rank 0 binds the port, so another process can take it in between
    (a race); the run is then repeated on a fresh port.
    """
    for attempt in range(attempts):
        context = mp.spawn(worker, args=(2, free_port(), str(out)), nprocs=2, join=False)
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        try:
            while not context.join(timeout=2.0):
                if time.monotonic() > deadline:
                    for process in context.processes:
                        if process.is_alive():
                            process.kill()
                    pytest.fail(f"the two-process run did not finish within {SPAWN_TIMEOUT_S:.0f} s")
            return
        except mp.ProcessRaisedException as exc:
            if "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise
            shutil.rmtree(out)
            out.mkdir()


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    spawn_two_workers(out)
    return out


def test_two_processes_with_batch_b_match_one_process_with_batch_2b(two_process_run: Path, tmp_path: Path) -> None:
    single = DiffusionTrainer(
        diffusion_pipeline(), Images(images()), tmp_path, diffusion_config(2 * BATCH), ProcessContext()
    )
    for _ in range(STEPS):
        single.train_step()
    resumed = DiffusionTrainer(
        Pipeline.from_pretrained(two_process_run / "diffusion" / "checkpoint" / "pipeline"),
        Images(images()),
        tmp_path / "r",
        diffusion_config(2 * BATCH),
    )
    resumed.load_checkpoint(two_process_run / "diffusion" / "checkpoint")
    assert resumed.step == STEPS
    for (name, a), b in zip(single.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    for (name, a), b in zip(single.ema.model.state_dict().items(), resumed.ema.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_two_process_checkpoint_resumes_on_one_process(two_process_run: Path, tmp_path: Path) -> None:
    trainer = DiffusionTrainer(
        Pipeline.from_pretrained(two_process_run / "diffusion" / "checkpoint" / "pipeline"),
        Images(images()),
        tmp_path / "d",
        diffusion_config(2 * BATCH, steps=STEPS + 2),
    )
    trainer.load_checkpoint(two_process_run / "diffusion" / "checkpoint")
    trainer.train(progress=False)
    assert trainer.step == STEPS + 2

    ebm = EBMTrainer(
        Pipeline.from_pretrained(two_process_run / "ebm" / "checkpoint" / "pipeline"),
        Images(images() * 2 - 1),
        tmp_path / "e",
        ebm_config(steps=STEPS + 1),
    )
    ebm.load_checkpoint(two_process_run / "ebm" / "checkpoint")
    rank0 = float((two_process_run / "buffer_rank0.txt").read_text())
    assert float(ebm.buffer.storage.sum()) == pytest.approx(rank0)
    ebm.train(progress=False)
    assert ebm.step == STEPS + 1


def test_every_rank_buffer_is_in_the_checkpoint(two_process_run: Path) -> None:
    from thermogen.training.checkpoint import load_checkpoint_state

    state = load_checkpoint_state(two_process_run / "ebm" / "checkpoint")
    assert state["world_size"] == 2 and len(state["buffers"]) == 2
    sums = [float(b["samples"].sum()) for b in state["buffers"]]
    expected = [float((two_process_run / f"buffer_rank{r}.txt").read_text()) for r in range(2)]
    assert sums == pytest.approx(expected)
    assert sums[0] != pytest.approx(sums[1])  # each process refines its own chains
