"""A training run's folder: one writer at a time, and no silent restart over an earlier run.

* :class:`RunLock` holds ``<out>/.lock`` with an OS lock (``flock``) for as long
  as the run lives. The kernel drops the lock when the process ends, however it
  ends (SIGKILL included), so a lock file left behind by a dead run is stale by
  construction: the next run takes it over and says so. The file names the
  holder (pid, host, start time, command) for the error a second run gets.
* :func:`previous_run` lists what shows that a folder already holds a run
  (a log, sample grids, leftovers of an interrupted checkpoint save), so
  ``--resume`` without a loadable checkpoint refuses instead of starting over.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from thermogen.atomic import leftovers, recover_directory
from thermogen.errors import CheckpointError, RunLockedError

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(out):`` -- exclusive use of a run folder by this process.

    Raises:
        RunLockedError: another live process holds the folder (the message names it).

    Example::

        with RunLock("runs/ddim") as lock:
            if lock.stale_holder:                            # the lock of a run that died, taken over
                print(f"took over from pid {lock.stale_holder['pid']}")
            trainer.train()
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.path = Path(out_dir) / LOCK_NAME
        self._fd: int | None = None
        self.stale_holder: dict[str, object] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is in use by another training run ({holder}); "
                "wait for it to finish, stop it, or choose another --out"
            ) from None
        previous = _read_holder(fd)
        if previous:  # a lock file whose holder died without unlocking (the kernel released its lock)
            self.stale_holder = previous
        os.ftruncate(fd, 0)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "command": sys.argv}
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # an empty lock file: nobody holds it
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def previous_run(out_dir: str | os.PathLike[str]) -> list[str]:
    """What in ``out_dir`` shows an earlier run (empty: a fresh folder)."""
    out = Path(out_dir)
    signs = []
    log = out / "log.jsonl"
    if log.is_file() and log.stat().st_size > 0:
        signs.append(f"{log.name} ({log.stat().st_size} bytes)")
    samples = out / "samples"
    if samples.is_dir() and any(samples.iterdir()):
        signs.append("sample grids in samples/")
    from thermogen.training.loop import CHECKPOINT_DIR

    signs += [f"{path.name} (an interrupted checkpoint save)" for _kind, _pid, path in leftovers(out / CHECKPOINT_DIR)]
    return signs


def checkpoint_to_resume(out_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint folder ``--resume`` continues from, None for a fresh folder.

    Restores a checkpoint left missing by a save killed between its two renames.

    Raises:
        CheckpointError: the folder shows an earlier run but holds no checkpoint;
            resuming would start over and append to its log.
    """
    from thermogen.training.loop import CHECKPOINT_DIR

    checkpoint = Path(out_dir) / CHECKPOINT_DIR
    recover_directory(checkpoint)
    if checkpoint.is_dir():
        return checkpoint
    signs = previous_run(out_dir)
    if signs:
        raise CheckpointError(
            f"--resume: {out_dir} holds an earlier run ({'; '.join(signs)}) but no checkpoint "
            f"({checkpoint} is missing); refusing to start over from step 0. Restore the checkpoint, "
            "or move the folder away and start without --resume"
        )
    return None


def _lock(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - no flock there: runs are not locked
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_holder(fd: int) -> dict[str, object] | None:
    try:
        data = os.pread(fd, 65536, 0)
        holder = json.loads(data.decode()) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict[str, object] | None) -> str:
    if not holder:
        return "holder unknown"
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    command = holder.get("command")
    shown = " ".join(map(str, command)) if isinstance(command, list) else "?"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {when}: {shown}"
