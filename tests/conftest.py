"""Shared test setup: CPU only, few threads, the Hub fixture, the MNIST location."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

pytest_plugins = ["hub_fixtures"]

# Hypothesis draws the same examples on every run (derandomize: seeded from each test's source), so CI results
# do not depend on luck. `HYPOTHESIS_PROFILE=explore pytest` searches with fresh random draws while developing.
settings.register_profile("thermogen", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=500, derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "thermogen"))

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


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op thread for a module of tiny tensors: more threads only add overhead and stall when busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
