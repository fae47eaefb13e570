"""``thermogen list`` and ``thermogen schedules``: what is registered, and the schedule plot."""

from __future__ import annotations

import argparse
from typing import Any

from thermogen import registry
from thermogen.cli.arguments import plot_path


def register(commands: Any) -> None:
    listing = commands.add_parser("list", help="list registered schedules, samplers, models, pipelines")
    listing.add_argument("kind", nargs="?", choices=registry.KINDS, help="only this kind")
    listing.set_defaults(run=run_list)

    schedules = commands.add_parser("schedules", help="list noise schedules; --plot draws their rates")
    schedules.add_argument("names", nargs="*", help="schedules to plot (default: all registered)")
    schedules.add_argument(
        "--plot",
        metavar="PNG",
        type=plot_path,
        help="write signal/noise rates and log-SNR against t (needs matplotlib)",
    )
    schedules.set_defaults(run=run_schedules)


def run_list(args: argparse.Namespace) -> int:
    from thermogen.hub import bundled_names

    for kind in [args.kind] if args.kind else registry.KINDS:
        loaded = registry.load_all(kind)
        print(f"{kind}:")
        for name, obj in loaded.items():
            doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
            print(f"  {name:<18} {doc[0] if doc else ''}")
    if not args.kind:
        print("bundled pretrained pipelines:")
        for name in bundled_names():
            print(f"  {name}")
    return 0


def run_schedules(args: argparse.Namespace) -> int:
    names = args.names or registry.names("schedules")
    if args.plot:
        from thermogen.viz import plot_schedules

        path = plot_schedules(names, args.plot)
        print(f"wrote {path}")
        return 0
    for name in names:
        schedule = registry.get("schedules", name)()
        start, end = float(schedule.signal_rate(0.0)), float(schedule.signal_rate(1.0))
        print(f"{name:<18} signal_rate(0)={start:.4f} signal_rate(1)={end:.4f}")
    return 0
