"""The ``thermogen`` command: ``thermogen --help`` lists the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from thermogen.cli import average, check, components, figures, recalibrate, sample, train, tune_steps
from thermogen.cli.arguments import DefaultsFormatter, set_threads, subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thermogen",
        description="Energy-based and diffusion models: train, sample, evaluate, inspect components.",
    )
    from thermogen import __version__

    parser.add_argument("--version", action="version", version=f"thermogen {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (components, train, recalibrate, average, sample, figures, tune_steps, check):
        module.register(commands)
    try:
        from thermogen.cli import evaluate
    except ImportError:  # pragma: no cover - the metrics extra is part of the package
        pass
    else:
        evaluate.register(commands)
    for _, command in subcommands(parser):
        command.formatter_class = DefaultsFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        set_threads(getattr(args, "threads", None))  # the commands that run a model take --threads
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, LookupError, RuntimeError) as exc:
        from thermogen.errors import ThermogenError

        if not isinstance(exc, ThermogenError) and not isinstance(exc, ValueError):
            raise
        print(f"thermogen {args.command}: error: {exc}", file=sys.stderr)
        return 2
