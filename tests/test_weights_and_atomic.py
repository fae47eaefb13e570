"""safetensors state: strict loading, corrupted files, nested state; atomic saves survive crashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thermogen.atomic import atomic_directory, atomic_file
from thermogen.errors import CheckpointError
from thermogen.models.unet import UNet
from thermogen.weights import flatten_state, load_module_state, load_tensors, save_tensors, unflatten_state


def tiny_unet(widths: tuple[int, ...] = (4, 8)) -> UNet:
    return UNet(1, 16, widths=widths, block_depth=1, embedding_dims=4)


def test_strict_loading_lists_missing_unexpected_and_mismatched(tmp_path: Path) -> None:
    model = tiny_unet()
    state = dict(model.state_dict())
    state.pop("head.bias")
    state["extra.weight"] = torch.zeros(1)
    state["stem.weight"] = torch.zeros(5, 1, 1, 1)
    save_tensors(state, tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_module_state(model, tmp_path / "w.safetensors")
    message = str(info.value)
    assert "missing tensors: head.bias" in message
    assert "unexpected tensors: extra.weight" in message
    assert "stem.weight: file (5, 1, 1, 1) vs model (4, 1, 1, 1)" in message


def test_round_trip_is_exact(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = tiny_unet()
    torch.nn.init.normal_(model.head.weight)
    save_tensors(model.state_dict(), tmp_path / "w.safetensors")
    other = tiny_unet()
    load_module_state(other, tmp_path / "w.safetensors")
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_file_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "w.safetensors"
    save_tensors(tiny_unet().state_dict(), path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 10)
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_tensors(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_tensors(tmp_path / "nope.safetensors")


def test_nested_state_round_trip() -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.0, 0.999))
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    state = {"step": 7, "optimizer": optimizer.state_dict(), "rng": torch.Generator().manual_seed(3).get_state()}
    tensors, skeleton = flatten_state(state)
    restored = unflatten_state(tensors, skeleton)
    assert restored["step"] == 7
    assert restored["optimizer"]["param_groups"][0]["betas"] == (0.0, 0.999)
    assert set(restored["optimizer"]["state"]) == {0, 1}  # integer keys survive
    assert torch.equal(restored["rng"], state["rng"])
    fresh = torch.optim.Adam(model.parameters(), lr=0.1)
    fresh.load_state_dict(restored["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_crash_mid_file_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_tensors({"a": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="power cut"), atomic_file(path) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("power cut")
    assert torch.equal(load_tensors(path)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


def test_crash_mid_directory_save_keeps_the_previous_checkpoint_loadable(tmp_path: Path) -> None:
    from thermogen.interfaces import NoisePredictor

    torch.manual_seed(1)
    first = tiny_unet()
    torch.nn.init.normal_(first.head.weight)
    first.save_pretrained(tmp_path / "ckpt")

    second = tiny_unet((4, 4))
    original_write = second.write_to

    def crashing_write(directory: Path) -> None:
        original_write(directory)
        (directory / "model.safetensors").write_bytes(b"half written")
        raise KeyboardInterrupt("killed")

    second.write_to = crashing_write  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        second.save_pretrained(tmp_path / "ckpt")

    loaded = NoisePredictor.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(loaded.head.weight, first.head.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no half-written directory left behind


def test_atomic_directory_replaces_an_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "d"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]


def test_saved_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    mask = os.umask(0o022)
    try:
        tiny_unet().save_pretrained(tmp_path / "m")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o755
    for name in ("config.json", "model.safetensors"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == 0o644
