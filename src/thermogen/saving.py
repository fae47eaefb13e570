"""Where ``save_pretrained`` may write, and how: it never deletes what it did not write.

A save goes to a folder that either does not exist, is empty, or holds only
*layout files*, the names a save writes::

    model_index.json  README.md  config.json  model.safetensors      (top level)
    <component>/config.json  <component>/model.safetensors           (one level down)

(plus the hidden leftovers of an interrupted save). Such a folder is replaced
as a whole, atomically (:func:`thermogen.atomic.atomic_directory`). Anything
else refuses with :class:`~thermogen.errors.SaveTargetError`, before anything
is written: a regular file or a symbolic link at the target, or a folder that
holds any other file (notes, a dataset, a component folder with extra files).

The current working directory (``save_pretrained(".")``) cannot be swapped
without pulling it from under the shells that stand in it, so it is written in
place: each component folder and each top-level file is replaced atomically,
then layout files the new version does not have are removed. A crash during
such a save can leave files of both versions (each file complete).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from thermogen.atomic import _fsync_tree, atomic_directory, exchange
from thermogen.errors import SaveTargetError

TOP_LEVEL_FILES = frozenset({"model_index.json", "README.md", "config.json", "model.safetensors"})
COMPONENT_FILES = frozenset({"config.json", "model.safetensors"})
_HIDDEN_LEFTOVER = re.compile(r"^\..+\.(tmp|new|old)-")


def foreign_entries(directory: Path) -> list[str]:
    """Paths (relative to ``directory``) that a save would not have written, sorted."""
    foreign = []
    for entry in sorted(directory.iterdir()):
        if _is_leftover(entry.name):
            continue
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_dir():
            inner = [p for p in entry.iterdir() if not _is_leftover(p.name)]
            extra = [p.name for p in inner if p.name not in COMPONENT_FILES or p.is_symlink() or not p.is_file()]
            if not inner:
                foreign.append(f"{entry.name}/")
            foreign += [f"{entry.name}/{name}" for name in sorted(extra)]
        elif entry.name not in TOP_LEVEL_FILES or not entry.is_file():
            foreign.append(entry.name)
    return foreign


def save_directory(directory: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Run ``write(folder)`` into an empty folder that then becomes ``directory`` (see the module doc)."""
    target = Path(os.path.abspath(directory))
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        kind = "a symbolic link" if target.is_symlink() else "a file"
        raise SaveTargetError(f"{target} is {kind}, not a folder; refusing to replace it by a saved folder")
    if target.is_dir():
        foreign = foreign_entries(target)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise SaveTargetError(
                f"refusing to save into {target}: it holds files a save did not write ({shown}); "
                "save into a new or empty folder, or move them away"
            )
        if _is_working_directory(target):
            _save_in_place(target, write)
            return target
    with atomic_directory(target) as tmp:
        write(tmp)
    return target


def _save_in_place(target: Path, write: Callable[[Path], None]) -> None:
    scratch = target / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    scratch.mkdir()
    try:
        write(scratch)
        _fsync_tree(scratch)
        new_names = {entry.name for entry in scratch.iterdir()}
        for name in sorted(new_names, key=lambda n: (n == "model_index.json", n)):  # the index last
            entry, destination = scratch / name, target / name
            if destination.exists() and destination.is_dir() != entry.is_dir():
                _remove(destination)
            if entry.is_dir() and destination.is_dir():
                if not exchange(entry, destination):
                    shutil.rmtree(destination)
                    os.rename(entry, destination)
            else:
                os.replace(entry, destination)
        for entry in list(target.iterdir()):
            if entry.name not in new_names and not _is_leftover(entry.name):
                _remove(entry)  # a layout file of the previous version (foreign ones refused above)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _is_leftover(name: str) -> bool:
    return _HIDDEN_LEFTOVER.match(name) is not None


def _is_working_directory(target: Path) -> bool:
    try:
        return os.path.samefile(target, os.getcwd())
    except OSError:
        return False
