"""Every ```python block in README.md and docs/ runs as written.

The blocks of one page run top to bottom in one namespace, like a notebook. A
block that needs the network, an installed example plugin or a long run is
marked in the page, visibly for readers, by a line right above it::

    *Not run in the test suite: <reason>.*

The reason shows in the test report. Every other block is verified, and where a
block is followed by "Output (identical on every run):" and a plain code block,
what the block prints must be exactly that text.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SKIP = r"\*Not run in the test suite: (?P<skip>[^*\n]+?)\.\*"
OUTPUT = r"(?:\s*Output \(identical on every run\):\s*```\n(?P<output>.*?)```)?"
BLOCK = re.compile(rf"(?:{SKIP}[ \t]*\n\s*)?```python\n(?P<code>.*?)```{OUTPUT}", re.DOTALL)


def blocks(page: Path) -> list[tuple[str | None, str]]:
    return [(m.group("skip"), m.group("code")) for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


def outputs(page: Path) -> list[str | None]:
    """The printed output each block states (None: it states none)."""
    return [m.group("output") for m in BLOCK.finditer(page.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run_as_written(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: bundled pipelines and local folders only
    namespace: dict[str, object] = {"__name__": "__docs__"}
    skipped = []
    for index, ((skip, code), stated) in enumerate(zip(blocks(page), outputs(page))):
        if skip:
            skipped.append(f"block {index + 1}: {skip}")
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, f"{page.name} block {index + 1}", "exec"), namespace)
        if stated is not None:
            assert printed.getvalue().rstrip() == stated.rstrip(), f"{page.name} block {index + 1} printed otherwise"
    if skipped:
        print(f"{page.name}: skipped " + "; ".join(skipped))
    assert os.getcwd() == str(tmp_path)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_skip_notes_are_visible_and_sit_right_above_a_block(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "<!-- skip" not in text, f"{page.name}: a hidden skip marker; write '*Not run in the test suite: ...*'"
    notes = len(re.findall(SKIP, text))
    assert notes == sum(1 for skip, _ in blocks(page) if skip), f"{page.name}: a skip note not right above a block"
