"""Argument types and options shared by the subcommands, so each is spelled, checked and described once.

A bad value (``--steps 0``, ``--device cuda`` without CUDA, ``--out x.gif``,
``--plot`` without matplotlib) becomes an argparse usage error, not a traceback.
:func:`open_diffusion_pipeline` is what the PIPELINE and ``--device`` arguments of the
commands that change a diffusion pipeline mean; ``--threads`` is applied by ``thermogen.cli.main``
before any command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def integer(text: str) -> int:
    """argparse type: an integer (the types built on it check its range)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def device(text: str) -> str:
    """argparse type: a device that exists here ('cpu', 'cuda', 'cuda:1', 'mps')."""
    from thermogen.checks import check_device

    try:
        check_device(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def image_path(text: str) -> str:
    """argparse type: a file name ending in .png, .jpg or .jpeg (the format written)."""
    suffix = Path(text).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise argparse.ArgumentTypeError(f"{text!r} has extension {suffix or '(none)'!r}; expected .png, .jpg or .jpeg")
    return text


def plot_path(text: str) -> str:
    """argparse type: a PNG path, only if matplotlib is installed."""
    if importlib.util.find_spec("matplotlib") is None:
        raise argparse.ArgumentTypeError(f"plotting needs matplotlib; install it with {install_hint('plot')}")
    return image_path(text)


def install_hint(extra: str) -> str:
    """The pip command that adds an extra: ``-e`` form for an editable checkout."""
    import thermogen

    source = Path(thermogen.__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file():
        return f"pip install -e '{source}[{extra}]'"
    return f"pip install 'thermogen[{extra}]'"


def add_device(parser: Any, default: str | None = "cpu", default_text: str = "%(default)s") -> None:
    parser.add_argument(
        "--device", type=device, default=default, help=f"torch device: cpu, cuda, cuda:1, mps (default: {default_text})"
    )


def add_threads(parser: Any) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's, one per core; 1 is much faster when other jobs keep cores busy)",
    )


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (None or 0: torch's choice)."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def open_diffusion_pipeline(args: argparse.Namespace, **overrides: Any) -> Any:
    """The diffusion pipeline ``args.pipeline`` names, on ``args.device``.

    ``overrides`` go to ``from_pretrained`` (e.g. ``sampler="euler"``); another kind of pipeline raises ValueError.
    """
    from thermogen.pipelines.base import Pipeline
    from thermogen.pipelines.diffusion import DiffusionPipeline

    pipeline = Pipeline.from_pretrained(args.pipeline, **overrides).to(args.device)
    if not isinstance(pipeline, DiffusionPipeline):
        raise ValueError(f"{args.pipeline} is a {type(pipeline).__name__}; expected a diffusion pipeline")
    return pipeline


def add_no_progress(parser: Any) -> None:
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars (default: shown)")


def add_out_image(parser: Any, default: str) -> None:
    parser.add_argument(
        "--out", type=image_path, default=default, help="image file, .png or .jpg (default: %(default)s)"
    )


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that states every option's default: "(default: X)" is appended unless the text already
    says it, the option is a flag (off by default) or its default is None (the text describes it).

    Example::

        parser = argparse.ArgumentParser(prog="train", formatter_class=DefaultsFormatter)
        parser.add_argument("--steps", type=int, default=2000, help="optimizer steps")
        parser.format_help()                                 # "... --steps STEPS  optimizer steps (default: 2000)"
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text
            or not action.option_strings
            or action.default in (None, False, argparse.SUPPRESS)
            or action.const is not None
        ):
            return text
        return f"{text} (default: %(default)s)".lstrip()


def subcommands(parser: argparse.ArgumentParser, prefix: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command's parser that runs something, named like its command line ("train diffusion")."""
    choices = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not choices and prefix:
        yield prefix, parser
    for action in choices:
        for name, child in action.choices.items():
            yield from subcommands(child, f"{prefix} {name}".strip())
