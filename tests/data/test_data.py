"""Tests for thermogen.data: ImageFolder and MNIST (synthetic IDX files, and the real ones if present)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from locations import ROOT
from PIL import Image

from thermogen.data import (
    MNIST,
    MNIST_ENV_VAR,
    MNIST_FILES,
    ImageFolder,
    SignedRangeImages,
    download_mnist,
    folder_training_set,
    load_mnist,
    mnist_training_set,
    read_idx_images,
    read_idx_labels,
    resolve_mnist_dir,
)
from thermogen.errors import ConfigError, DatasetError

Tiny = tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]

REAL_MNIST = ROOT / ".." / "shared" / "data" / "mnist"


# ----------------------------------------------------------------- ImageFolder


def _save(path: Path, array: np.ndarray, **kwargs: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _constant(h: int, w: int, colour: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (h, w, len(colour))).copy()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Nested folder: RGB and grayscale PNGs, a JPEG, non-square sizes, and a non-image file."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    _save(root / "top.png", _constant(30, 40, (200, 100, 50)))
    _save(root / "a" / "gray.png", np.full((17, 17), 90, dtype=np.uint8))
    _save(root / "a" / "noise.PNG", rng.integers(0, 256, (12, 20, 3), dtype=np.uint8))
    _save(root / "b" / "c" / "photo.jpg", rng.integers(0, 256, (50, 33, 3), dtype=np.uint8), quality=90)
    (root / "b" / "notes.txt").write_text("not an image")
    return root


def test_image_folder_scan_is_recursive_sorted_and_filtered(folder: Path) -> None:
    ds = ImageFolder(folder, image_size=16)
    rel = [p.relative_to(folder).as_posix() for p in ds.paths]
    assert rel == ["a/gray.png", "a/noise.PNG", "b/c/photo.jpg", "top.png"]
    assert ds.paths == ImageFolder(folder, image_size=8, channels=1).paths
    assert len(ds) == 4


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("center_crop", [False, True])
def test_image_folder_shape_dtype_range(folder: Path, channels: int, center_crop: bool) -> None:
    ds = ImageFolder(folder, image_size=16, channels=channels, center_crop=center_crop)
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (channels, 16, 16)
        assert x.dtype == torch.float32
        assert x.is_contiguous()
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_image_folder_constant_colour_exact(folder: Path) -> None:
    rgb = ImageFolder(folder, image_size=16)
    top = rgb[rgb.paths.index(folder / "top.png")]  # 40x30, downscaled and stretched
    expected = torch.tensor([200, 100, 50], dtype=torch.float32) / 255
    assert torch.equal(top, expected.view(3, 1, 1).expand(3, 16, 16))

    gray_as_rgb = rgb[0]  # 17x17 grey 90, downscaled, replicated to 3 channels
    assert torch.equal(gray_as_rgb, torch.full((3, 16, 16), 90 / 255))

    up = ImageFolder(folder, image_size=24, channels=1)[0]  # upscaled
    assert torch.equal(up, torch.full((1, 24, 24), 90 / 255))


def test_image_folder_jpeg_and_exact_size_untouched(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    _save(tmp_path / "n.png", noise)
    _save(tmp_path / "j.jpeg", _constant(20, 20, (0, 128, 255)), quality=95)
    ds = ImageFolder(tmp_path, image_size=8)
    assert torch.equal(ds[1], torch.from_numpy(noise).permute(2, 0, 1).float() / 255)
    jpeg = ds[0]
    expected = torch.tensor([0, 128, 255], dtype=torch.float32).view(3, 1, 1) / 255
    assert torch.allclose(jpeg, expected.expand(3, 8, 8), atol=3 / 255)


def test_image_folder_center_crop_versus_stretch(tmp_path: Path) -> None:
    # 40 wide x 20 high: red | green (centre 20x20) | blue.
    img = np.zeros((20, 40, 3), dtype=np.uint8)
    img[:, :10, 0] = 255
    img[:, 10:30, 1] = 255
    img[:, 30:, 2] = 255
    _save(tmp_path / "wide.png", img)
    green = torch.zeros(3, 10, 10)
    green[1] = 1.0
    assert torch.equal(ImageFolder(tmp_path, 10, center_crop=True)[0], green)
    assert torch.equal(
        ImageFolder(tmp_path, 20, center_crop=True)[0], torch.from_numpy(img[:, 10:30]).permute(2, 0, 1).float() / 255
    )
    stretched = ImageFolder(tmp_path, 10, center_crop=False)[0]
    assert stretched[0, :, 0].min() > 0.9 and stretched[2, :, -1].min() > 0.9  # red left, blue right kept


def test_image_folder_alpha_and_16_bit(tmp_path: Path) -> None:
    _save(tmp_path / "a_rgba.png", _constant(6, 6, (10, 20, 30, 0)))
    _save(tmp_path / "b_16.png", np.full((6, 6), 32768, dtype=np.uint16))
    ds = ImageFolder(tmp_path, 4, channels=3)
    assert torch.equal(ds[0], (torch.tensor([10.0, 20.0, 30.0]) / 255).view(3, 1, 1).expand(3, 4, 4))
    assert torch.allclose(ds[1], torch.full((3, 4, 4), 32768 / 65535))
    assert torch.allclose(ImageFolder(tmp_path, 4, channels=1)[1], torch.full((1, 4, 4), 32768 / 65535))


def test_image_folder_corrupt_file_named(tmp_path: Path) -> None:
    good = _save(tmp_path / "good.png", _constant(8, 8, (1, 2, 3)))
    (tmp_path / "garbage.png").write_bytes(b"definitely not a png")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:40])
    ds = ImageFolder(tmp_path, 8)
    assert ds[ds.paths.index(good)].shape == (3, 8, 8)  # good files still load
    for name in ("garbage.png", "truncated.png"):
        with pytest.raises(DatasetError, match=name):
            ds[ds.paths.index(tmp_path / name)]
    with pytest.raises(DatasetError, match="2 of 3") as info:
        ds.verify()
    assert "garbage.png" in str(info.value) and "truncated.png" in str(info.value)


def test_image_folder_empty_or_missing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="empty") as info:
        ImageFolder(empty, 8)
    assert ".png" in str(info.value) and ".jpg" in str(info.value)
    with pytest.raises(DatasetError, match="nope"):
        ImageFolder(tmp_path / "nope", 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 0}, "image_size.*0"),
        ({"image_size": -3}, "-3"),
        ({"image_size": 2.5}, "2.5"),
        ({"image_size": 8, "channels": 2}, "channels.*2"),
        ({"image_size": 8, "extensions": ()}, "extensions"),
    ],
)
def test_image_folder_bad_args(folder: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ImageFolder(folder, **kwargs)


# ----------------------------------------------------------------- MNIST, synthetic


def _idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    return header + payload


def _write_split(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    img_name, lbl_name = MNIST_FILES[split]
    root.mkdir(parents=True, exist_ok=True)
    (root / img_name).write_bytes(gzip.compress(_idx_bytes(0x803, images.shape, images.tobytes())))
    (root / lbl_name).write_bytes(gzip.compress(_idx_bytes(0x801, labels.shape, labels.astype(np.uint8).tobytes())))


@pytest.fixture
def tiny(tmp_path: Path) -> Tiny:
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist"
    data = {}
    for split, n in (("train", 5), ("test", 3)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[0, 5, 5], images[0, 6, 6] = 0, 255
        labels = rng.integers(0, 10, n).astype(np.int64)
        _write_split(root, split, images, labels)
        data[split] = (images, labels)
    return root, data


def test_mnist_idx_round_trip(tiny: Tiny) -> None:
    root, data = tiny
    for split in ("train", "test"):
        images, labels = load_mnist(root, split=split, download=False)
        assert images.dtype == np.uint8 and images.shape == data[split][0].shape
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(images, data[split][0])
        np.testing.assert_array_equal(labels, data[split][1])
        assert images.flags.writeable


def test_mnist_dataset_preprocessing(tiny: Tiny) -> None:
    root, data = tiny
    u8 = torch.from_numpy(data["train"][0]).float().unsqueeze(1)

    ebm = MNIST(root, "train", preprocess="ebm", download=False)
    assert ebm.images.shape == (5, 1, 32, 32) and ebm.images.dtype == torch.float32
    assert torch.equal(ebm.images[:, :, 2:30, 2:30], (u8 - 127.5) / 127.5)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert bool((ebm.images[:, 0][:, border] == -1).all())
    assert float(ebm.images.min()) == -1.0 and float(ebm.images.max()) == 1.0
    first = ebm[0]
    assert isinstance(first, torch.Tensor) and first.shape == (1, 32, 32) and len(ebm) == 5
    assert first.data_ptr() == ebm.images.data_ptr()  # items are views, not copies

    diff = MNIST(root, "train", preprocess="diffusion", download=False)
    assert torch.equal(diff.images[:, :, 2:30, 2:30], u8 / 255)
    assert bool((diff.images[:, 0][:, border] == 0).all())
    assert float(diff.images.max()) == 1.0

    raw = MNIST(root, "test", preprocess="raw", download=False, with_labels=True)
    image, label = raw[2]
    assert image.shape == (1, 28, 28) and isinstance(label, int)
    assert label == int(data["test"][1][2])
    assert torch.equal(image[0], torch.from_numpy(data["test"][0][2]).float() / 255)


def test_mnist_bad_arguments(tiny: Tiny) -> None:
    root, _ = tiny
    with pytest.raises(ValueError, match="'val'"):
        MNIST(root, split="val", download=False)
    with pytest.raises(ValueError, match="'gan'"):
        MNIST(root, preprocess="gan", download=False)


# ----------------------------------------------------------------- training sets


def test_mnist_training_sets_in_each_models_range(tiny: Tiny) -> None:
    root, data = tiny
    u8 = torch.from_numpy(data["train"][0]).float().unsqueeze(1)
    diffusion = mnist_training_set(root, "diffusion")
    assert diffusion.images.shape == (5, 1, 32, 32) and torch.equal(diffusion.images[:, :, 2:30, 2:30], u8 / 255)
    ebm = mnist_training_set(root, "ebm")
    assert torch.equal(ebm.images[:, :, 2:30, 2:30], (u8 - 127.5) / 127.5) and float(ebm.images.min()) == -1.0
    native = mnist_training_set(root, "diffusion", image_size=28)
    assert torch.equal(native.images, u8 / 255)
    with pytest.raises(ValueError, match=r"image_size=28; MNIST is 32x32 \(padded\) or, for diffusion, 28x28"):
        mnist_training_set(root, "ebm", image_size=28)
    with pytest.raises(ValueError, match="image_size=30"):
        mnist_training_set(root, "diffusion", image_size=30)
    with pytest.raises(ConfigError, match="preprocess='raw'; expected one of 'diffusion', 'ebm'"):
        mnist_training_set(root, "raw")  # type: ignore[arg-type]


def test_folder_training_set_serves_the_folder_in_each_models_range(folder: Path) -> None:
    images = ImageFolder(folder, 8, channels=1)
    assert isinstance(folder_training_set(folder, 8, "diffusion", channels=1), ImageFolder)
    signed = folder_training_set(folder, 8, "ebm", channels=1)
    assert isinstance(signed, SignedRangeImages) and len(signed) == len(images) == 4
    for i in range(len(images)):
        assert torch.equal(signed[i], images[i] * 2 - 1)
    assert float(min(signed[i].min() for i in range(4))) >= -1.0 and float(max(signed[i].max() for i in range(4))) <= 1


def _corrupt(path: Path, kind: str) -> None:
    packed = path.read_bytes()
    blob = gzip.decompress(packed)
    if kind == "truncated gzip":
        path.write_bytes(packed[: len(packed) // 2])
    elif kind == "not gzip":
        path.write_bytes(b"hello, not gzip at all")
    elif kind == "wrong magic":
        path.write_bytes(gzip.compress((0x802).to_bytes(4, "big") + blob[4:]))
    elif kind == "short payload":
        path.write_bytes(gzip.compress(blob[:-7]))
    elif kind == "long payload":
        path.write_bytes(gzip.compress(blob + b"\0"))
    elif kind == "short header":
        path.write_bytes(gzip.compress(blob[:6]))


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("truncated gzip", "gzip"),
        ("not gzip", "gzip"),
        ("wrong magic", "magic"),
        ("short payload", "truncated"),
        ("long payload", "longer"),
        ("short header", "header"),
    ],
)
@pytest.mark.parametrize("which", [0, 1])
def test_mnist_corrupt_file_named(tiny: Tiny, kind: str, match: str, which: int) -> None:
    root, _ = tiny
    name = MNIST_FILES["train"][which]
    _corrupt(root / name, kind)
    with pytest.raises(DatasetError, match=match) as info:
        load_mnist(root, "train", download=False)
    assert name in str(info.value)
    assert isinstance(info.value, OSError)
    load_mnist(root, "test", download=False)  # the other split is unaffected


def test_mnist_inconsistent_files(tmp_path: Path) -> None:
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    _write_split(tmp_path / "count", "train", images, np.zeros(3, dtype=np.int64))
    with pytest.raises(DatasetError, match=r"4 images.*3 labels"):
        load_mnist(tmp_path / "count", "train", download=False)
    _write_split(tmp_path / "range", "train", images, np.array([0, 1, 2, 10]))
    with pytest.raises(DatasetError, match=r"outside 0\.\.9"):
        load_mnist(tmp_path / "range", "train", download=False)
    _write_split(tmp_path / "shape", "train", np.zeros((4, 32, 32), dtype=np.uint8), np.zeros(4, dtype=np.int64))
    with pytest.raises(DatasetError, match=r"\(28, 28\)"):
        load_mnist(tmp_path / "shape", "train", download=False)
    assert read_idx_images(tmp_path / "shape" / MNIST_FILES["train"][0]).shape == (4, 32, 32)


def test_mnist_missing_dir_no_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "not_there"
    with pytest.raises(DatasetError) as info:
        load_mnist(missing, "test", download=False)
    msg = str(info.value)
    assert str(missing) in msg and "data_dir" in msg and MNIST_ENV_VAR in msg
    assert all(name in msg for name in MNIST_FILES["test"])
    assert MNIST_FILES["train"][0] not in msg
    assert not missing.exists()  # nothing created without download

    # Default location when neither data_dir nor the env var is given.
    monkeypatch.delenv(MNIST_ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(DatasetError, match=os.path.join(".cache", "thermogen", "mnist")):
        resolve_mnist_dir(download=False)


def test_mnist_env_var(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    root, data = tiny
    monkeypatch.setenv(MNIST_ENV_VAR, str(root))
    assert resolve_mnist_dir(download=False) == root
    np.testing.assert_array_equal(load_mnist(split="test", download=False)[1], data["test"][1])


def test_download_md5_mismatch_leaves_nothing(tiny: Tiny, tmp_path: Path) -> None:
    """A local file:// mirror (no network): synthetic files fail the md5 check."""
    root, _ = tiny
    dest = tmp_path / "dest"
    name = MNIST_FILES["test"][1]
    with pytest.raises(DatasetError, match="md5") as info:
        download_mnist(dest, [name], mirrors=[root.as_uri() + "/"])
    assert name in str(info.value)
    assert list(dest.iterdir()) == []


# ----------------------------------------------------------------- MNIST, real files


@pytest.fixture(scope="module")
def real() -> Path:
    if not all((REAL_MNIST / n).is_file() for pair in MNIST_FILES.values() for n in pair):
        pytest.skip(f"real MNIST files not found in {REAL_MNIST}")
    return REAL_MNIST


def test_real_mnist_counts_and_labels(real: Path) -> None:
    train_images, train_labels = load_mnist(real, "train", download=False)
    assert train_images.shape == (60000, 28, 28) and train_labels.shape == (60000,)
    hist = np.bincount(train_labels, minlength=10)
    assert hist.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert hist.sum() == 60000
    assert abs(train_images.mean() / 255 - 0.1307) < 1e-4

    test_labels = read_idx_labels(real / MNIST_FILES["test"][1])
    hist = np.bincount(test_labels, minlength=10)
    assert hist.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert hist.sum() == 10000


def test_real_mnist_preprocessing(real: Path) -> None:
    ebm = MNIST(real, "test", preprocess="ebm", download=False, with_labels=True)
    assert ebm.images.shape == (10000, 1, 32, 32) and len(ebm) == 10000
    assert float(ebm.images.min()) == -1.0 and float(ebm.images.max()) == 1.0
    x = ebm.images[:, 0]
    for edge in (x[:, :2], x[:, -2:], x[:, :, :2], x[:, :, -2:]):
        assert bool((edge == -1).all())
    image, label = ebm[0]
    assert image.shape == (1, 32, 32) and label == 7  # the first test digit is a 7

    diff = MNIST(real, "test", preprocess="diffusion", download=False)
    assert float(diff.images.min()) == 0.0 and float(diff.images.max()) == 1.0
    assert torch.allclose(diff.images, (ebm.images + 1) / 2, atol=1e-6)


def test_download_from_local_mirror(real: Path, tmp_path: Path) -> None:
    """download_mnist with file:// mirrors (no network): first mirror lacks the file, second has it."""
    dest = tmp_path / "dl"
    name = MNIST_FILES["test"][1]
    download_mnist(dest, [name], mirrors=[(tmp_path / "nowhere").as_uri() + "/", real.resolve().as_uri() + "/"])
    assert [p.name for p in dest.iterdir()] == [name]  # no temporary file left
    assert (dest / name).read_bytes() == (real / name).read_bytes()
