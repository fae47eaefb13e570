"""Atomic writes: a save either completes or leaves the previous version in place.

Files are written to a temporary name in the target's directory, flushed, and
moved over the target with :func:`os.replace` (atomic on POSIX and Windows for
one file).

Directories are written in full into a hidden sibling ``.NAME.tmp-PID-RAND``,
flushed to disk, renamed ``.NAME.new-PID-RAND`` (the mark of a complete
version), then swapped with the target in one step where the system can
(``renameat2(RENAME_EXCHANGE)``, Linux >= 3.15 on ext4, xfs, btrfs, tmpfs):
at every instant the target is a complete version, old or new. Elsewhere the
swap takes two renames (target -> ``.NAME.old-PID-RAND``, new -> target); a
process killed between them leaves no target, and :func:`recover_directory`
(called by the next save and by every load) renames the complete ``.new-``
version, or else the ``.old-`` one, back into place. Leftovers of dead
processes (``.tmp-`` always incomplete, ``.old-`` / ``.new-`` once the target
is back) are removed by the next save of the same target; those of a live
process are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_LEFTOVER = re.compile(r"(?P<kind>tmp|new|old)-(?:(?P<pid>\d+)-[0-9a-f]+|[a-z0-9_]{8})")
"""``tmp-PID-HEX`` and the like; ``tmp-XXXXXXXX`` / ``old-XXXXXXXX`` are leftovers of earlier
thermogen versions (no pid: taken as dead; their ``tmp`` may be incomplete, so only ``old`` restores)."""


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 (and writers may recreate the file)
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it becomes ``path``.

    An existing ``path`` (a directory) is replaced only after the new one is
    complete and on disk, and is then deleted with everything in it: callers
    that must not delete foreign files check the target first (see
    :mod:`thermogen.saving`). Leftovers of earlier interrupted saves of the same
    target are recovered or removed (see the module docstring).
    """
    target = Path(os.path.abspath(path))
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        from thermogen.errors import SaveTargetError

        kind = "a symbolic link" if target.is_symlink() else "a file"
        raise SaveTargetError(f"{target} is {kind}, not a folder; refusing to replace it by a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir(mode=0o777 & ~_umask())
    try:
        yield tmp
        _fsync_tree(tmp)
        new = tmp.with_name(tmp.name.replace(".tmp-", ".new-", 1))
        os.rename(tmp, new)  # complete: from here on a recovery may use it
        _fsync_directory(target.parent)
        if not target.exists():
            os.rename(new, target)
        elif exchange(new, target):
            shutil.rmtree(new)  # it now holds the previous version
        else:
            old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
            os.rename(target, old)
            os.rename(new, target)
            _fsync_directory(target.parent)
            shutil.rmtree(old)
        _fsync_directory(target.parent)
        remove_leftovers(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def leftovers(target: str | os.PathLike[str]) -> list[tuple[str, int, Path]]:
    """``(kind, pid, path)`` of the hidden ``.tmp-`` / ``.new-`` / ``.old-`` siblings of ``target``."""
    target = Path(os.path.abspath(target))
    prefix = f".{target.name}."
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in target.parent.iterdir():
            if entry.name.startswith(prefix):
                match = _LEFTOVER.fullmatch(entry.name[len(prefix) :])
                if match and entry.is_dir() and not entry.is_symlink():
                    found.append((match["kind"], int(match["pid"] or 0), entry))
    return sorted(found, key=lambda item: item[2].stat().st_mtime_ns)


def recover_directory(target: str | os.PathLike[str]) -> bool:
    """Put a complete version back at ``target`` if a save died between its two renames.

    Prefers the newest complete new version (``.new-``), else the previous one
    (``.old-``); only leftovers of processes that are no longer running are
    used. Returns whether ``target`` was restored.
    """
    target = Path(os.path.abspath(target))
    if target.exists() or target.is_symlink():
        return False
    dead = [(kind, path) for kind, pid, path in leftovers(target) if not _alive(pid)]
    for wanted in ("new", "old"):
        for kind, path in reversed(dead):
            if kind == wanted:
                try:
                    os.rename(path, target)
                except OSError:  # another process restored it first
                    return False
                _fsync_directory(target.parent)
                return True
    return False


def remove_leftovers(target: str | os.PathLike[str]) -> list[Path]:
    """Delete leftovers of earlier saves of ``target`` (only once ``target`` exists); return them."""
    target = Path(os.path.abspath(target))
    if not target.is_dir():
        return []
    removed = []
    for _kind, pid, path in leftovers(target):
        if not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two paths in one atomic step (``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    function = _renameat2()
    if function is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = function(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # this filesystem cannot: fall back to two renames
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


_RENAMEAT2: list[Any] = []


def _renameat2() -> Any:
    if not _RENAMEAT2:
        function = None
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                function = libc.renameat2
                function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]


def _alive(pid: int) -> bool:
    if pid <= 0:  # a leftover of an earlier version, which did not record its pid
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or we cannot tell: be careful)
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    """Make renames inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for folder, _dirs, files in os.walk(root):
        for name in files:
            _fsync(Path(folder) / name)
        _fsync_directory(Path(folder))
