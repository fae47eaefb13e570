"""``thermogen average-weights``: the uniform average of a run's snapshots, saved as one pipeline."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "average-weights",
        help="average the network weights of several snapshots of one run into one pipeline",
        description="Loads each pipeline, averages every network's weights uniformly (stochastic weight "
        "averaging; thermogen.pipelines.averaging) and saves the result with the last pipeline's other "
        "components (schedule, sampler, replay buffer). Snapshots come from `thermogen train ... --snapshot-every N`.",
    )
    parser.add_argument("pipelines", nargs="+", help="pipeline folders, bundled names or Hub repo ids, oldest first")
    parser.add_argument("--out", required=True, help="folder for the averaged pipeline")
    parser.set_defaults(run=run_average)


def run_average(args: argparse.Namespace) -> int:
    from thermogen.pipelines.averaging import average_pipelines
    from thermogen.pipelines.base import Pipeline

    pipelines = [Pipeline.from_pretrained(source) for source in args.pipelines]
    average_pipelines(pipelines).save_pretrained(args.out)
    print(f"averaged the weights of {len(pipelines)} pipelines; wrote {args.out}")
    return 0
