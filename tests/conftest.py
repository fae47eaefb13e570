"""Shared test setup: CPU only, few threads, the Hub fixture, the MNIST location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

pytest_plugins = ["hub_fixtures"]

# One thread: the suite runs many small ops, where OpenMP threads waiting on each other cost more than they give.
torch.set_num_threads(1)

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir() -> Path:
    """The MNIST files shipped beside the project for offline tests; skips when absent."""
    directory = Path(os.environ.get("THERMOGEN_MNIST_DIR", SHARED_MNIST))
    if not (directory / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {directory}")
    return directory
