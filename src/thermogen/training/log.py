"""Training logs as JSON lines: one object per logged step, appended (so a resumed run continues the file)."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from thermogen.errors import CheckpointError


class TrainingLog:
    """Append ``{"step": ..., "time": ..., **metrics}`` lines to ``path`` (no-op when not enabled).

    Example::

        log = TrainingLog(Path("runs/ddim/log.jsonl"), enabled=context.is_main)
        log.write(step=100, loss=0.031)                      # appends {"time": ..., "step": 100, "loss": 0.031}
        read_log(log.path)[-1]["loss"]                       # 0.031
    """

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, **metrics: Any) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"time": round(time.time(), 3), **metrics}) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop entries past ``step`` (written after the checkpoint a run resumes from)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [e for e in read_log(self.path) if not isinstance(e.get("step"), int) or e["step"] <= step]
        from thermogen.atomic import atomic_file

        with atomic_file(self.path) as tmp:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")


def read_log(path: Path) -> list[dict[str, Any]]:
    """All entries of a JSON-lines training log.

    A torn last line (the run was killed while appending it) is skipped with a
    warning; any other line that is not a JSON object raises
    :class:`~thermogen.errors.CheckpointError` naming the file and the line.
    """
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    entries = []
    for i, (number, line) in enumerate(numbered):
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError(f"a {type(entry).__name__}, not an object")
        except (ValueError, RecursionError) as exc:
            if i == len(numbered) - 1:
                warnings.warn(f"{path}: skipping the torn last line {number} ({str(exc)[:80]})", stacklevel=2)
                break
            raise CheckpointError(f"{path}: line {number} is not a JSON object: {str(exc)[:120]}") from None
        entries.append(entry)
    return entries
