"""Reading a saved folder safely: one complete version, no links out of it.

* **One version.** A load records the identity of every folder and file it may
  read (inode, size, modification time) before and after reading; if they
  differ, a save replaced the folder meanwhile and the load starts again (up to
  five times, then :class:`~thermogen.errors.CheckpointError`). A load therefore
  returns one complete version or fails clearly, never a mix of two saves.
* **No links out.** Before reading, every symbolic link in the folder (and one
  level of component folders) must point inside it; a Hugging Face cache
  snapshot may point into its repo's ``blobs/``. Anything else raises
  :class:`~thermogen.errors.CheckpointError` naming the link and where it goes.
* **Interrupted saves.** A folder missing because a save died between its two
  renames is restored from the complete leftover first
  (:func:`thermogen.atomic.recover_directory`); one that a running save is
  swapping is waited for (up to two seconds).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from thermogen.atomic import _alive, leftovers, recover_directory
from thermogen.errors import CheckpointError

T = TypeVar("T")

READ_ATTEMPTS = 5
_MAX_DEPTH = 3

Identity = tuple[tuple[str, int, int, int], ...]


def prepare_local(name_or_path: str | os.PathLike[str], wait_s: float = 2.0) -> None:
    """Restore a local folder left missing by a dead save; wait for one a live save is swapping."""
    path = Path(name_or_path)
    if path.exists():
        return
    recover_directory(path)
    deadline = time.monotonic() + wait_s
    while not path.exists() and any(_alive(pid) for _kind, pid, _path in leftovers(path)):
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)


def read_consistently(directory: Path, read: Callable[[Path], T], attempts: int = READ_ATTEMPTS) -> T:
    """``read(directory)``, repeated while a concurrent save changes the folder under it."""
    check_links(directory)
    for attempt in range(attempts):
        before = identity(directory)
        try:
            result = read(directory)
        except (OSError, ValueError, LookupError):
            if identity(directory) == before:
                raise
        else:
            if identity(directory) == before:
                return result
        time.sleep(0.005 * (attempt + 1))
        check_links(directory)
    raise CheckpointError(
        f"{directory} changed {attempts} times while it was being read (another process is saving into it); "
        "load it again once that save is done"
    )


def identity(directory: Path) -> Identity:
    """(relative path, inode, size, mtime in ns) of the folder, its entries and its sub-folders' entries."""
    found: list[tuple[str, int, int, int]] = []

    def add(path: Path, name: str, depth: int) -> None:
        try:
            stat = path.stat()
        except OSError:
            found.append((name, -1, -1, -1))
            return
        found.append((name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
        if depth < 2 and path.is_dir():
            try:
                children = sorted(path.iterdir())
            except OSError:
                return
            for child in children:
                add(child, f"{name}/{child.name}", depth + 1)

    add(directory, ".", 0)
    return tuple(found)


def trusted_root(directory: Path) -> Path:
    """The folder that links in ``directory`` may point into: itself, or a Hub cache repo folder."""
    resolved = directory.resolve()
    for folder in (resolved, *resolved.parents):
        parent = folder.parent
        if parent.name == "snapshots" and parent.parent.name.startswith(("models--", "datasets--", "spaces--")):
            return parent.parent
    return resolved


def check_links(directory: Path) -> None:
    """Raise CheckpointError if a symbolic link in ``directory`` points outside it (see the module doc)."""
    root = trusted_root(directory)

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = list(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if entry.is_symlink():
                destination = entry.resolve()
                if destination != root and root not in destination.parents:
                    raise CheckpointError(
                        f"{entry} is a symbolic link to {destination}, outside the folder {root}; "
                        "refusing to read it (copy the file in instead)"
                    )
            if entry.is_dir() and depth < _MAX_DEPTH:
                walk(entry, depth + 1)

    walk(directory, 1)
