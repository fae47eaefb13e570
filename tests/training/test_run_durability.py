"""Training runs under faults: kills during checkpoint saves, crafted state, locks, resume that never starts over."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from fault_injection import memory_folder, run_killed_at
from image_sets import Images
from PIL import Image

from thermogen.buffers import ReplayBuffer
from thermogen.cli import main
from thermogen.errors import CheckpointError, RunLockedError
from thermogen.models.energy_cnn import EnergyCNN
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.energy.sgld import SGLDSampler
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.training.checkpoint import STATE_JSON, STATE_TENSORS
from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig
from thermogen.training.log import read_log
from thermogen.training.run_folder import RunLock, checkpoint_to_resume
from thermogen.weights import load_tensors, save_tensors

IMAGES = torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def diffusion_trainer(out: Path, steps: int = 6) -> DiffusionTrainer:
    torch.manual_seed(0)
    pipeline = DiffusionPipeline(
        UNet(1, 8, widths=(4, 8), block_depth=1, embedding_dims=4), OffsetCosineSchedule(), DDIMSampler(), Normalizer()
    )
    config = DiffusionTrainingConfig(
        steps=steps, batch_size=8, log_every=1, checkpoint_every=3, sample_every=100, sample_images=2, sample_steps=1
    )
    return DiffusionTrainer(pipeline, Images(IMAGES), out, config)


def ebm_trainer(out: Path) -> EBMTrainer:
    model = EnergyCNN(1, 8, widths=(4, 8), hidden=8)
    model.reset_parameters(torch.Generator().manual_seed(0))
    pipeline = EBMPipeline(model, SGLDSampler(num_steps=2), ReplayBuffer(capacity=16, sample_shape=(1, 8, 8)))
    config = EBMTrainingConfig(
        steps=3, batch_size=8, langevin_steps=2, log_every=1, checkpoint_every=3, sample_every=100, sample_images=2,
        sample_chain_steps=1,
    )  # fmt: skip
    return EBMTrainer(pipeline, Images(IMAGES * 2 - 1), out, config)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    with memory_folder(tmp_path) as folder:
        yield folder


def flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# -- kills during a checkpoint save ---------------------------------------------------------------


def test_sigkill_at_every_file_operation_of_a_checkpoint_save_resumes_from_a_whole_checkpoint(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # still a kill point; saves time on slow disks
    out = scratch / "run"
    trainer = diffusion_trainer(out)
    trainer.config.steps = 3
    trainer.train(progress=False)  # checkpoint at step 3
    at_3 = flat(trainer.model)
    for _ in range(3):
        trainer.train_step()
    at_6 = flat(trainer.model)
    kills = 0
    resumed = diffusion_trainer(out)
    for k in range(1, 500):
        if not run_killed_at(k, trainer.save_checkpoint):
            break
        kills += 1
        found = checkpoint_to_resume(out)
        assert found is not None, f"kill {k}: no checkpoint to resume from"
        resumed.load_checkpoint()
        expected = {3: at_3, 6: at_6}[resumed.step]
        assert torch.equal(flat(resumed.model), expected), k
    assert kills > 20
    leftover = sorted(p.name for p in out.iterdir() if p.name.startswith(".checkpoint."))
    assert leftover == []  # the completed save removed what the killed ones left


# -- crafted and damaged trainer state ----------------------------------------------------------------


def edit_state(root: Path, key: str, value: object) -> None:
    """Set a top-level field of a saved trainer_state.json skeleton."""
    path = root / STATE_JSON
    skeleton = json.loads(path.read_text())
    skeleton["__dict__"] = [[k, value if k == key else v] for k, v in skeleton["__dict__"]]
    path.write_text(json.dumps(skeleton))


def wrong_moment(root: Path) -> None:
    tensors = load_tensors(root / STATE_TENSORS)
    tensors["optimizer.state.0.exp_avg"] = torch.zeros(3)
    save_tensors(tensors, root / STATE_TENSORS)


def wrong_betas(root: Path) -> None:
    path = root / STATE_JSON
    path.write_text(path.read_text().replace('"betas",', '"betas", "fast"], ["unused",', 1))


CRAFTED: dict[str, tuple[Callable[[Path], None], str]] = {
    "unknown fields": (lambda r: (r / STATE_JSON).write_text('{"foo": 1}'), "field '<top>' is {'foo': 1}"),
    "bad dict": (lambda r: (r / STATE_JSON).write_text('{"__dict__": 5}'), "field '<top>' is {'__dict__': 5}"),
    "deep nesting": (lambda r: (r / STATE_JSON).write_text("[" * 50_000 + "]" * 50_000), "deeper than 32 levels"),
    "not json": (lambda r: (r / STATE_JSON).write_text('{"__dict__": [['), "is not valid JSON"),
    "negative step": (lambda r: edit_state(r, "step", -5), r"field 'step' is -5; expected an integer in \[0, 6\]"),
    "huge step": (lambda r: edit_state(r, "step", 1e9), "field 'step' is a float; expected int"),
    "missing step": (lambda r: edit_state(r, "step", None), "field 'step' is a NoneType"),
    "moment of the wrong shape": (wrong_moment, r"field 'optimizer.state.0.exp_avg' has shape \(3,\)"),
    "betas of the wrong kind": (wrong_betas, r"field 'optimizer.param_groups.0.betas' is 'fast'"),
    "a damaged log line": (
        lambda r: (r.parent / "log.jsonl").write_text('{"step": 1}\n{"st\n{"step": 3}\n'),
        r"log\.jsonl: line 2",
    ),
}


@pytest.mark.parametrize("craft", list(CRAFTED), ids=list(CRAFTED))
def test_crafted_trainer_state_is_refused_before_anything_changes(tmp_path: Path, craft: str) -> None:
    out = tmp_path / "run"
    trainer = diffusion_trainer(out, steps=3)
    trainer.train(progress=False)
    damage, message = CRAFTED[craft]
    damage(out / "checkpoint")
    log_before = (out / "log.jsonl").read_bytes()
    fresh = diffusion_trainer(out)
    before = flat(fresh.model), flat(fresh.ema.model), fresh.optimizer.state_dict()["state"]
    with pytest.raises(CheckpointError, match=message) as info:
        fresh.load_checkpoint()
    assert "trainer_state" in str(info.value)  # the file is named
    assert torch.equal(flat(fresh.model), before[0]) and torch.equal(flat(fresh.ema.model), before[1])
    assert fresh.optimizer.state_dict()["state"] == before[2] and fresh.step == 0
    assert (out / "log.jsonl").read_bytes() == log_before


def test_ebm_state_without_buffers_is_refused(tmp_path: Path) -> None:
    trainer = ebm_trainer(tmp_path / "run")
    trainer.train(progress=False)
    edit_state(tmp_path / "run" / "checkpoint", "buffers", [])
    fresh = ebm_trainer(tmp_path / "run")
    before = flat(fresh.model)
    with pytest.raises(CheckpointError, match="trainer_state.json: field 'buffers' is empty"):
        fresh.load_checkpoint()
    assert torch.equal(flat(fresh.model), before) and fresh.step == 0


def test_a_torn_last_log_line_is_skipped_with_a_warning_and_a_torn_middle_line_named(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n{"step": 3, "lo')
    with pytest.warns(UserWarning, match="skipping the torn last line 3"):
        assert [e["step"] for e in read_log(log)] == [1, 2]
    log.write_text('{"step": 1}\n{"ste\n{"step": 3}\n')
    with pytest.raises(CheckpointError, match=r"log\.jsonl: line 2 is not a JSON object"):
        read_log(log)


# -- the command line: locks, resume, flags, seeds ------------------------------------------------------------


def cli_args(tmp_path: Path, out: Path, *extra: str, size: int = 8) -> list[str]:
    folder = tmp_path / f"images{size}"
    if not folder.is_dir():
        folder.mkdir()
        for i in range(8):
            Image.new("L", (size, size), i * 30).save(folder / f"{i}.png")
    return [
        "train", "diffusion", "--dataset", "folder", "--data-dir", str(folder), "--channels", "1",
        "--image-size", str(size), "--batch-size", "4", "--widths", "4,8", "--block-depth", "1",
        "--out", str(out), "--log-every", "1", "--sample-every", "100", "--checkpoint-every", "2", "--no-progress",
        *extra,
    ]  # fmt: skip


def test_a_second_run_on_the_same_folder_is_locked_out_and_told_who_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with RunLock(out):
        assert main(cli_args(tmp_path, out, "--steps", "2")) == 2
        assert f"in use by another training run (pid {os.getpid()}" in capsys.readouterr().err
        with pytest.raises(RunLockedError):
            RunLock(out).acquire()
    assert not (out / "log.jsonl").exists()
    (out / ".lock").write_text(json.dumps({"pid": 2**22 + 7, "host": "gone"}))  # a holder that died
    assert main(cli_args(tmp_path, out, "--steps", "2")) == 0
    assert "no longer running (pid 4194311)" in capsys.readouterr().out
    with RunLock(out):  # released on exit
        pass


def test_resume_refuses_a_run_without_checkpoint_and_a_fresh_run_refuses_an_occupied_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(cli_args(tmp_path, out, "--steps", "2")) == 0
    log = (out / "log.jsonl").read_bytes()
    assert main(cli_args(tmp_path, out, "--steps", "4")) == 2
    assert "already holds a run" in capsys.readouterr().err
    import shutil

    shutil.rmtree(out / "checkpoint")
    assert main(cli_args(tmp_path, out, "--steps", "4", "--resume")) == 2
    err = capsys.readouterr().err
    assert "holds an earlier run (log.jsonl" in err and "refusing to start over from step 0" in err
    assert (out / "log.jsonl").read_bytes() == log
    assert main(cli_args(tmp_path, tmp_path / "new", "--steps", "2", "--resume")) == 0  # a fresh folder: step 0


def test_resume_refuses_conflicting_flags_and_data_naming_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(cli_args(tmp_path, out, "--steps", "2")) == 0
    args = cli_args(
        tmp_path, out, "--steps", "4", "--resume", "--schedule", "cosine", "--sampler", "ddim", "--model", "ddpm_unet"
    )
    args[args.index("--widths") + 1] = "8,16"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--model ddpm_unet (the checkpoint has unet)" in err
    assert "--widths 8,16 (the checkpoint has 4,8)" in err
    assert "--schedule cosine (the checkpoint has offset_cosine)" in err
    assert "--sampler" not in err  # the same as the checkpoint's: fine
    assert main(cli_args(tmp_path, out, "--steps", "4", "--resume", size=16)) == 2
    assert "images of shape (1, 16, 16), the checkpoint's network (1, 8, 8)" in capsys.readouterr().err
    assert main(cli_args(tmp_path, out, "--steps", "4", "--resume")) == 0


def test_a_run_is_a_function_of_its_seed(tmp_path: Path) -> None:
    def weights(name: str, seed: str) -> bytes:
        out = tmp_path / name
        assert main(cli_args(tmp_path, out, "--steps", "2", "--seed", seed)) == 0
        return (out / "checkpoint" / "pipeline" / "model" / "model.safetensors").read_bytes()

    torch.manual_seed(123)
    a = weights("a", "1")
    torch.manual_seed(456)  # the global state must not matter
    assert weights("b", "1") == a
    assert weights("c", "2") != a
