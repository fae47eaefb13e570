"""Model cards: the README.md written beside a saved pipeline (Hub metadata + how it was made)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def model_card(
    class_name: str,
    components: Mapping[str, str | None],
    description: str = "",
    training_command: str | None = None,
    training_notes: str | None = None,
    data: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    tags: Sequence[str] = (),
) -> str:
    """A README.md with YAML front matter (``library_name: thermogen``, tags) and the given facts.

    Args:
        class_name: the pipeline's registered name (e.g. "diffusion", "ebm").
        components: component attribute -> registered name, as in model_index.json.
        description: free text, the first paragraph.
        training_command: the exact command that produced the weights.
        training_notes: what else to know about the run (steps, wall time, resumes).
        data: what it was trained on.
        metrics: name -> value, rendered as a table.
        tags: extra Hub tags.
    """
    all_tags = ["thermogen", class_name, *tags]
    lines = ["---", "library_name: thermogen", "tags:"]
    lines += [f"- {tag}" for tag in dict.fromkeys(all_tags)]
    lines += ["---", "", f"# thermogen `{class_name}` pipeline", ""]
    if description:
        lines += [description, ""]
    lines += ["| component | registered name |", "| --- | --- |"]
    lines += [f"| {name} | `{value}` |" for name, value in components.items() if value is not None]
    lines += [
        "",
        "```python",
        "from thermogen.pipelines import Pipeline",
        "",
        'pipe = Pipeline.from_pretrained("<this repo or folder>")',
        "```",
        "",
    ]
    if data:
        lines += ["## Data", "", data, ""]
    if training_command or training_notes:
        lines += ["## Training", ""]
        if training_command:
            lines += ["```bash", training_command, "```", ""]
        if training_notes:
            lines += [training_notes, ""]
    if metrics:
        lines += ["## Metrics", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {key} | {value} |" for key, value in metrics.items()]
        lines.append("")
    return "\n".join(lines)
