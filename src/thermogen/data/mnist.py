"""MNIST from the four original IDX gzip files, with the book's preprocessing.

Files are looked up in ``data_dir``, else ``$THERMOGEN_MNIST_DIR``, else
``~/.cache/thermogen/mnist``; missing ones are downloaded from a public mirror
(md5-verified, written atomically) unless ``download=False``. Files already on
disk are not checksummed: their IDX headers and lengths are validated instead,
so a truncated or corrupted file raises `DatasetError` naming it.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from thermogen.errors import DatasetError

__all__ = [
    "MNIST",
    "MNIST_ENV_VAR",
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "download_mnist",
    "load_mnist",
    "read_idx_images",
    "read_idx_labels",
    "resolve_mnist_dir",
]

log = logging.getLogger(__name__)

MNIST_ENV_VAR = "THERMOGEN_MNIST_DIR"
DEFAULT_MNIST_DIR = Path("~/.cache/thermogen/mnist")

#: split -> (images file, labels file)
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

#: md5 of each original .gz file (the published values).
MNIST_MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Base URLs tried in order; each must end with "/".
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dims
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dim
_IMAGE_SHAPE = (28, 28)
_PREPROCESS = ("ebm", "diffusion", "raw")
_PAD = 2  # 28 -> 32


# --------------------------------------------------------------------------- IDX


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Decompress and parse one IDX gzip file into a read-write uint8 array."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"IDX file {path} is not a valid gzip file (corrupt or truncated): {exc}") from exc
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(
            f"IDX file {path} is truncated: {len(data)} bytes after decompression, expected a header of {header} bytes"
        )
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DatasetError(f"IDX file {path} has magic number 0x{found:08x}, expected 0x{magic:08x}")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if any(d <= 0 for d in dims):
        raise DatasetError(f"IDX file {path} has dims {dims}, expected all > 0")
    expected = int(np.prod(dims))
    got = len(data) - header
    if got != expected:
        what = "truncated" if got < expected else "longer than its header says"
        raise DatasetError(f"IDX file {path} is {what}: payload of {got} bytes, expected {expected} for dims {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX3 ubyte images ``.gz`` file.

    Returns a uint8 array of shape (N, rows, cols), values 0..255.
    Raises `DatasetError` naming the file on a bad gzip, wrong magic or wrong length.
    """
    return _read_idx(Path(path), _IMAGES_MAGIC, 3)


def read_idx_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX1 ubyte labels ``.gz`` file.

    Returns an int64 array of shape (N,), values as stored (0..9 for MNIST).
    Raises `DatasetError` naming the file on a bad gzip, wrong magic or wrong length.
    """
    return _read_idx(Path(path), _LABELS_MAGIC, 1).astype(np.int64)


# --------------------------------------------------------------------- locating


def _check_split(split: str) -> None:
    if split not in MNIST_FILES:
        raise ValueError(f"split must be one of {sorted(MNIST_FILES)}, got {split!r}")


def _needed_files(split: str | None) -> list[str]:
    if split is None:
        return [name for pair in MNIST_FILES.values() for name in pair]
    _check_split(split)
    return list(MNIST_FILES[split])


def _base_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(MNIST_ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_MNIST_DIR.expanduser()


def resolve_mnist_dir(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    split: str | None = None,
    download: bool = True,
) -> Path:
    """Return the folder holding the MNIST ``.gz`` files for ``split`` (both splits if None).

    The folder is ``data_dir`` if given, else ``$THERMOGEN_MNIST_DIR`` if set and
    non-empty, else ``~/.cache/thermogen/mnist``. Missing files are downloaded
    there if ``download`` is true; otherwise `DatasetError` lists them and how to
    point thermogen at a folder that has them.
    """
    root = _base_dir(data_dir)
    if root.exists() and not root.is_dir():
        raise DatasetError(f"MNIST data_dir {root} exists but is not a directory")
    missing = [name for name in _needed_files(split) if not (root / name).is_file()]
    if missing:
        if not download:
            raise DatasetError(
                f"MNIST files missing in {root}: {', '.join(missing)}. "
                f"Pass data_dir=<folder with the four IDX .gz files>, set the environment "
                f"variable {MNIST_ENV_VAR} to such a folder, or use download=True to fetch "
                f"them from {MNIST_MIRRORS[0]}"
            )
        download_mnist(root, missing)
    return root


# ------------------------------------------------------------------- download


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Download ``url`` to ``dest`` via a temporary file, checking its md5 first."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise DatasetError(f"md5 of {url} is {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def download_mnist(
    data_dir: str | os.PathLike[str],
    files: Sequence[str] | None = None,
    *,
    mirrors: Sequence[str] = MNIST_MIRRORS,
    timeout: float = 60.0,
) -> Path:
    """Download MNIST ``files`` (default: all four) into ``data_dir``, md5-verified.

    Each file is tried on every mirror in order; it is written to a temporary
    file in ``data_dir`` and moved into place with `os.replace` only once its md5
    matches `MNIST_MD5`, so a failed or concurrent download never leaves a partial
    file under the real name. Raises `DatasetError` listing each failed attempt.
    """
    root = Path(data_dir).expanduser()
    names = list(MNIST_MD5) if files is None else list(files)
    unknown = [n for n in names if n not in MNIST_MD5]
    if unknown:
        raise ValueError(f"unknown MNIST file names {unknown}, expected some of {list(MNIST_MD5)}")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create MNIST data_dir {root}: {exc}") from exc
    for name in names:
        errors: list[str] = []
        for base in mirrors:
            url = base + name
            log.info("downloading %s to %s", url, root / name)
            try:
                _fetch(url, root / name, MNIST_MD5[name], timeout)
                break
            except (OSError, urllib.error.URLError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise DatasetError(
                f"could not download MNIST file {name} into {root}:\n  "
                + "\n  ".join(errors)
                + f"\nDownload it by hand, or point data_dir / {MNIST_ENV_VAR} at a folder that has it."
            )
    return root


# ------------------------------------------------------------------- loading


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "train",
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split as numpy arrays.

    Returns ``(images, labels)``: uint8 (N, 28, 28) with values 0..255 and int64
    (N,) with values 0..9; N is 60000 for "train" and 10000 for "test" with the
    original files. See `resolve_mnist_dir` for where files are looked up.
    """
    _check_split(split)
    root = resolve_mnist_dir(data_dir, split=split, download=download)
    images_path, labels_path = (root / name for name in MNIST_FILES[split])
    images = read_idx_images(images_path)
    labels = read_idx_labels(labels_path)
    if images.shape[1:] != _IMAGE_SHAPE:
        raise DatasetError(f"IDX file {images_path} holds images of shape {images.shape[1:]}, expected {_IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"IDX file {labels_path} has labels outside 0..9 (max {labels.max()})")
    return images, labels


def _preprocess(images: np.ndarray, preprocess: str) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, H, W); see `MNIST` for the value ranges."""
    n, h, w = images.shape
    src = torch.from_numpy(images)
    pad = 0 if preprocess == "raw" else _PAD
    # Padding with raw 0 (black) and scaling afterwards gives the pad value of
    # each scale: -1 for "ebm", 0 for "diffusion".
    out = torch.zeros(n, 1, h + 2 * pad, w + 2 * pad, dtype=torch.float32)
    out[:, 0, pad : pad + h, pad : pad + w] = src
    if preprocess == "ebm":
        out.sub_(127.5).div_(127.5)  # 0 -> -1 and 255 -> 1 exactly
    else:
        out.div_(255.0)  # 255 -> 1 exactly
    return out


class MNIST(Dataset):
    """MNIST as one in-memory float32 tensor, with the book's preprocessing.

    ``preprocess``:

    - ``"ebm"``: padded 28 -> 32 (2 px each side), values in [-1, 1] as
      ``(u8 - 127.5) / 127.5``, padding -1;
    - ``"diffusion"``: padded 28 -> 32, values ``u8 / 255`` in [0, 1], padding 0;
    - ``"raw"``: 28 x 28 unpadded, values in [0, 1] (for a classifier).

    ``dataset[i]`` is a float32 tensor (1, H, W) (a view into `images`), or
    ``(image, label)`` with an int label if ``with_labels``.

    Attributes: ``images`` float32 (N, 1, H, W); ``labels`` int64 (N,) in 0..9.

    Example::

        test = MNIST(split="test", preprocess="diffusion", with_labels=True)   # downloads once if missing
        image, label = test[0]                               # (1, 32, 32) in [0, 1], an int in 0..9
        test.images.shape                                    # (10000, 1, 32, 32)
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        split: str = "train",
        preprocess: str = "ebm",
        download: bool = True,
        with_labels: bool = False,
    ) -> None:
        if preprocess not in _PREPROCESS:
            raise ValueError(f"preprocess must be one of {_PREPROCESS}, got {preprocess!r}")
        _check_split(split)
        images, labels = load_mnist(data_dir, split=split, download=download)
        self.split = split
        self.preprocess = preprocess
        self.with_labels = with_labels
        self.images: torch.Tensor = _preprocess(images, preprocess)
        self.labels: torch.Tensor = torch.from_numpy(labels)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.with_labels:
            return image, int(self.labels[index])
        return image

    def __repr__(self) -> str:
        shape = tuple(self.images.shape)
        return f"MNIST(split={self.split!r}, preprocess={self.preprocess!r}, images={shape})"
