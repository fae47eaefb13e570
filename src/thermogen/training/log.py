"""Training logs as JSON lines: one object per logged step, appended (so a resumed run continues the file)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class TrainingLog:
    """Append ``{"step": ..., "time": ..., **metrics}`` lines to ``path`` (no-op when not enabled)."""

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
        kept = [e for e in read_log(self.path) if e.get("step", 0) <= step]
        from thermogen.atomic import atomic_file

        with atomic_file(self.path) as tmp:
            tmp.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")


def read_log(path: Path) -> list[dict[str, Any]]:
    """All entries of a JSON-lines training log."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
