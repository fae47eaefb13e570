"""Saves under faults: SIGKILL at every file operation, concurrent readers, foreign files, links out.

Each kill test forks a child that saves with every file operation counted and
kills itself with SIGKILL just before operation k, for every k until a save
completes; the folder must then load as the previous or the new version.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fault_injection import memory_folder, run_killed_at

from thermogen import atomic
from thermogen.errors import CheckpointError, SaveTargetError
from thermogen.interfaces import NoisePredictor
from thermogen.models.unet import UNet
from thermogen.normalizer import Normalizer
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.schedules.cosine import OffsetCosineSchedule

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kill tests fork")


def tiny_unet(value: float) -> UNet:
    model = UNet(1, 8, widths=(4, 4), block_depth=1, embedding_dims=4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(value)
    return model


def tiny_pipeline(value: float) -> DiffusionPipeline:
    """A pipeline whose weights and normaliser both say which version it is."""
    return DiffusionPipeline(
        tiny_unet(value), OffsetCosineSchedule(), DDIMSampler(), Normalizer([value], [1.0 + value])
    )


def version_of(pipeline: DiffusionPipeline) -> float:
    """The version a loaded pipeline holds; fails on a mix of two saves."""
    weights = {float(p.detach().flatten()[0]) for p in pipeline.model.parameters()}
    normalizer = float(pipeline.normalizer.mean[0])
    assert weights == {normalizer}, f"mixed versions: weights {weights}, normaliser {normalizer}"
    return normalizer


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    with memory_folder(tmp_path) as folder:
        yield folder


def exchange_works(tmp_path: Path) -> bool:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        return atomic.exchange(tmp_path / "a", tmp_path / "b")
    finally:
        (tmp_path / "a").rmdir()
        (tmp_path / "b").rmdir()


def unet_version(model: NoisePredictor) -> float:
    values = {float(p.detach().flatten()[0]) for p in model.parameters()}
    assert len(values) == 1, f"mixed versions: {values}"
    return values.pop()


# A pipeline (four component folders) with the atomic swap; a single component with two renames.
KILLED_SAVES = {
    "exchange": (True, tiny_pipeline, Pipeline, version_of),
    "two-renames": (False, tiny_unet, NoisePredictor, unet_version),
}


@pytest.mark.parametrize("variant", list(KILLED_SAVES))
def test_sigkill_at_every_file_operation_of_a_save_leaves_a_loadable_folder(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, variant: str
) -> None:
    use_exchange, make, loader, version = KILLED_SAVES[variant]
    if use_exchange and not exchange_works(scratch):
        pytest.skip("this filesystem cannot swap folders atomically")
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # still a kill point; saves time on slow disks
    target = scratch / "saved"
    make(1.0).save_pretrained(target)
    kills = 0
    for k in range(1, 500):
        if not run_killed_at(k, lambda: make(2.0).save_pretrained(target), use_exchange):
            break
        kills += 1
        if use_exchange:
            assert target.is_dir(), f"killed before operation {k}: no folder at the target"
        loaded = loader.from_pretrained(target)  # restores the folder from a leftover if needed
        if version(loaded) == 2.0:  # the kill came after the swap: start the next one from version 1
            make(1.0).save_pretrained(target)
            assert sorted(p.name for p in scratch.iterdir()) == ["saved"], f"leftovers after kill {k}"
    assert kills > 10  # every file operation of a save was a kill point
    assert version(loader.from_pretrained(target)) == 2.0
    assert sorted(p.name for p in scratch.iterdir()) == ["saved"]  # the completed save cleaned up


def test_a_missing_target_is_restored_from_the_complete_leftover(tmp_path: Path) -> None:
    target = tmp_path / "pipe"
    tiny_pipeline(1.0).save_pretrained(target)
    # a save killed between its two renames: the target moved away, the new version complete
    dead_pid = 2**22 + 12345
    os.rename(target, tmp_path / f".pipe.old-{dead_pid}-aa")
    tiny_pipeline(2.0).save_pretrained(tmp_path / "other")
    os.rename(tmp_path / "other", tmp_path / f".pipe.new-{dead_pid}-bb")
    assert version_of(Pipeline.from_pretrained(target)) == 2.0
    assert atomic.remove_leftovers(target) == [tmp_path / f".pipe.old-{dead_pid}-aa"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_leftovers_of_a_live_process_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "pipe"
    tiny_pipeline(1.0).save_pretrained(target)
    live = tmp_path / f".pipe.tmp-{os.getppid()}-cc"
    live.mkdir()
    tiny_pipeline(2.0).save_pretrained(target)
    assert live.is_dir()


def test_a_concurrent_reader_sees_one_complete_version_or_a_clear_error(tmp_path: Path) -> None:
    """A writer saves versions 0 and 1 in turn while the reader loads 40 times: every load that
    returns holds one version (``version_of`` fails on a mix); the others end in CheckpointError.
    Counts, not durations, so a slow machine changes nothing but the time taken."""
    target = tmp_path / "pipe"
    tiny_pipeline(0.0).save_pretrained(target)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the writer, until the reader is done (or 120 s)
        try:
            deadline = time.monotonic() + 120.0
            n = 0
            while time.monotonic() < deadline:
                n += 1
                tiny_pipeline(float(n % 2)).save_pretrained(target)
        finally:
            os._exit(0)
    versions, errors = [], 0
    try:
        for _ in range(40):
            try:
                versions.append(version_of(Pipeline.from_pretrained(target)))
            except CheckpointError:
                errors += 1
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert len(versions) + errors == 40 and versions, (versions, errors)
    assert set(versions) <= {0.0, 1.0}


def test_save_never_deletes_foreign_files_or_replaces_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(SaveTargetError, match=r"notes\.txt"):
        tiny_unet(1.0).save_pretrained(folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]

    regular = tmp_path / "file"
    regular.write_text("data")
    with pytest.raises(SaveTargetError, match="is a file"):
        tiny_unet(1.0).save_pretrained(regular)
    assert regular.read_text() == "data"

    saved = tmp_path / "saved"
    tiny_unet(1.0).save_pretrained(saved)
    (saved / "extra").mkdir()
    (saved / "extra" / "data.bin").write_bytes(b"x")
    with pytest.raises(SaveTargetError, match="extra/data.bin"):
        tiny_unet(2.0).save_pretrained(saved)
    assert unet_version(NoisePredictor.from_pretrained(saved)) == 1.0


def test_saving_into_the_current_folder_works_and_removes_only_its_own_stale_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thermogen.buffers import ReplayBuffer
    from thermogen.models.energy_cnn import EnergyCNN
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.samplers.energy.sgld import SGLDSampler

    monkeypatch.chdir(tmp_path)
    ebm = EBMPipeline(EnergyCNN(in_channels=1, image_size=8), SGLDSampler(), ReplayBuffer(sample_shape=(1, 8, 8)))
    ebm.save_pretrained(".")
    assert (tmp_path / "buffer" / "model.safetensors").is_file()
    tiny_pipeline(1.0).save_pretrained(".")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["README.md", "model", "model_index.json", "normalizer", "sampler", "schedule"]
    assert version_of(Pipeline.from_pretrained(".")) == 1.0
    assert Path.cwd().samefile(tmp_path)


def test_loading_refuses_links_out_of_the_folder(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    target = tmp_path / "pipe"
    tiny_pipeline(1.0).save_pretrained(target)
    (target / "README.md").unlink()
    (target / "README.md").symlink_to(secret)
    with pytest.raises(CheckpointError, match=r"README\.md is a symbolic link to .*secret\.txt, outside"):
        Pipeline.from_pretrained(target)
    (target / "README.md").unlink()
    (target / "README.md").symlink_to(target / "model" / "config.json")  # inside the folder: fine
    assert version_of(Pipeline.from_pretrained(target)) == 1.0


def test_leftovers_of_earlier_versions_are_cleaned_or_restored(tmp_path: Path) -> None:
    """Earlier versions named them ``.NAME.tmp-XXXXXXXX`` / ``.NAME.old-XXXXXXXX`` (no pid)."""
    target = tmp_path / "pipe"
    tiny_pipeline(1.0).save_pretrained(target)
    os.rename(target, tmp_path / ".pipe.old-ab3_x9zq")  # killed between the two renames
    (tmp_path / ".pipe.tmp-k2m8q0pl").mkdir()  # a half-written new version
    assert version_of(Pipeline.from_pretrained(target)) == 1.0
    tiny_pipeline(2.0).save_pretrained(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
