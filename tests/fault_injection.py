"""Fault injection for the durability tests: SIGKILL before the k-th file operation, in a forked child."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from thermogen import atomic, saving

COUNTED = ("replace", "rename", "unlink", "rmdir", "mkdir", "chmod")
"""The ``os`` functions that change what another process sees (``shutil.rmtree`` goes through them), plus
the atomic folder swap. A kill before an ``fsync`` leaves the same visible state as a kill after the
operation before it, so fsyncs are not kill points of their own."""


def run_killed_at(k: int, save: Callable[[], object], use_exchange: bool = True) -> bool:
    """Fork a child that runs ``save`` and SIGKILLs itself just before file operation ``k``; True if it died.

    ``use_exchange=False`` makes the child swap folders with two renames, as on
    systems without ``renameat2(RENAME_EXCHANGE)``.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            count = [0]

            def counted(function: Callable[..., object]) -> Callable[..., object]:
                def wrapper(*args: object, **kwargs: object) -> object:
                    count[0] += 1
                    if count[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return function(*args, **kwargs)

                return wrapper

            for name in COUNTED:
                setattr(os, name, counted(getattr(os, name)))
            swap = counted(atomic.exchange) if use_exchange else (lambda a, b: False)
            atomic.exchange = swap  # type: ignore[assignment]
            saving.exchange = swap  # type: ignore[assignment]
            save()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, "the save failed without being killed"
    return False


@contextlib.contextmanager
def memory_folder(fallback: Path) -> Iterator[Path]:
    """A fresh folder on tmpfs where there is one (a kill test makes hundreds of small file operations)."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield fallback
        return
    folder = Path(tempfile.mkdtemp(dir=shm, prefix="thermogen-test-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
