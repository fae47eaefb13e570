"""``thermogen check DISTRIBUTION_OR_NAME``: run the conformance kit and print a table."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="run the conformance kit on a plugin distribution or a registered component",
        description="Run every conformance check on each component a distribution registers (e.g. "
        "thermogen-sigmoid, or thermogen for the built-ins), or on one registered name. Prints check, "
        "verdict and measured value; exits 1 when any check fails.",
    )
    check.add_argument("target", metavar="DISTRIBUTION_OR_NAME", help="an installed distribution or a registered name")
    check.add_argument(
        "--kind",
        choices=("schedules", "samplers", "diffusion_samplers", "energy_samplers", "models", "pipelines"),
        help="the kind of a registered name (needed when the name is registered as several kinds)",
    )
    check.set_defaults(run=run_check_command)


def run_check_command(args: argparse.Namespace) -> int:
    from thermogen.testing.conformance import format_table, resolve_target, run_checks

    results = []
    for name, kind in resolve_target(args.target, args.kind):
        results.extend(run_checks(name, kind=kind))
    print(format_table(results))
    for result in results:
        if not result.passed:
            print(f"\n{result.component}: {result.message}")
    return 0 if all(r.passed for r in results) else 1
