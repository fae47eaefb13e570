"""Copy a trained pipeline into the package (src/thermogen/pretrained/NAME) with its model card.

    python examples/bundle_pretrained.py ddim-mnist runs/ddim-mnist \
        --command "thermogen train diffusion ..." [--results docs/results.json]

The pipeline is read from RUN/checkpoint/pipeline (or --pipeline DIR, e.g. the output of
``thermogen recalibrate-bn``), its sampler replaced if ``--sampler JSON`` is given, and written with
save_pretrained (the Hub layout; ``--store-dtype float16`` halves the networks' weight files); the card
gives the training command, the data, the number of steps, the wall time measured from RUN/log.jsonl and the metrics of
examples/make_results.py when a results file is given.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import torch

from thermogen.model_card import model_card
from thermogen.pipelines.base import Pipeline
from thermogen.pipelines.diffusion import DiffusionPipeline, record_trained_noise_levels
from thermogen.training.checkpoint import load_checkpoint_state
from thermogen.training.log import read_log

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "src" / "thermogen" / "pretrained"
RESTART_GAP_S = 600.0


def active_seconds(log: list[dict[str, Any]]) -> float:
    """Training wall time from log timestamps, leaving out gaps where the run was stopped and resumed."""
    times = [entry["time"] for entry in log]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    typical = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
    return sum(g for g in gaps if g < RESTART_GAP_S) + typical


def metrics_for(name: str, results: dict[str, Any]) -> dict[str, str]:
    def fmt(m: dict[str, Any]) -> str:
        return (
            f"FD {m['fd']:.2f}, KID {m['kid_mean']:.3f}, confident {m['confident_fraction']:.3f}, "
            f"class entropy {m['class_entropy']:.3f} (N = {m['n']})"
        )

    if name.startswith("ddim") and "ddim" in results:
        r = results["ddim"]
        sampler = r.get("sampler", "ddim")  # results.json of older runs measured the book's DDIM
        compared = {f"20 steps, {label}": fmt(m) for label, m in r.get("compared", {}).items()}
        return {f"{sampler}, 20 steps": fmt(r["headline"]), **compared, "real-data floor": fmt(r["headline_floor"])}
    if name.startswith("ebm") and "ebm" in results:
        r = results["ebm"]
        chains = f"{r['chain']}-step chains from noise" if "chain" in r else "1000-step chains from noise"
        default = r["default_chain"] if "default_chain" in r else r["chains_1000"]  # results.json of older runs
        compared = {f"{label} ({m['chain']}-step chains)": fmt(m) for label, m in r.get("compared", {}).items()}
        return {chains: fmt(default), **compared, "real-data floor": fmt(r["floor"])}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="bundled name, e.g. ddim-mnist")
    parser.add_argument("run", type=Path, help="training output directory")
    parser.add_argument("--pipeline", type=Path, help="pipeline to ship (default: RUN/checkpoint/pipeline)")
    parser.add_argument("--command", required=True, help="the exact training command")
    parser.add_argument("--description", default="")
    parser.add_argument("--notes", default="", help="extra text for the training section")
    parser.add_argument("--results", type=Path, default=None, help="docs/results.json of make_results.py")
    parser.add_argument(
        "--data",
        default="MNIST training set (60,000 images), padded from 28 to 32 pixels (the book's preprocessing).",
        help="the data section of the card",
    )
    parser.add_argument(
        "--store-dtype",
        choices=["float32", "float16"],
        default="float32",
        help="dtype of the stored network weights (float16 halves the file; from_pretrained loads them as float32)",
    )
    parser.add_argument(
        "--sampler",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='the sampler to ship instead of the trained one, e.g. \'{"_class_name": "unipc", "spacing": "karras"}\'',
    )
    args = parser.parse_args()

    overrides = {"sampler": args.sampler} if args.sampler else {}
    pipeline = Pipeline.from_pretrained(args.pipeline or args.run / "checkpoint" / "pipeline", **overrides)
    if isinstance(pipeline, DiffusionPipeline) and pipeline.model.trained_noise_levels is None:
        # runs trained before the trainer recorded it: the levels its schedule covers over t in [0, 1]
        record_trained_noise_levels(pipeline.model, pipeline.schedule)
    steps = int(load_checkpoint_state(args.run / "checkpoint")["step"])
    log = [entry for entry in read_log(args.run / "log.jsonl") if entry["step"] <= steps]
    hours = active_seconds(log) / 3600 if log else 0.0
    results = json.loads(args.results.read_text()) if args.results and args.results.is_file() else {}
    config = pipeline.to_config()
    notes = f"{steps} optimizer steps, {hours:.2f} h of training on a 2-core CPU. {args.notes}".strip()
    pipeline.model_card = model_card(
        config["_class_name"],
        {k: config[k] for k in pipeline.component_kinds},
        description=args.description,
        training_command=args.command,
        training_notes=notes,
        data=args.data,
        metrics=metrics_for(args.name, results),
        tags=["mnist", "pytorch"],
    )
    target = BUNDLED / args.name
    for component in pipeline.components.values():
        if isinstance(component, torch.nn.Module):  # the networks; a replay buffer keeps its own storage
            component.to(getattr(torch, args.store_dtype))
    pipeline.save_pretrained(target)
    print(f"bundled {args.run} ({steps} steps, {hours:.2f} h) as {target}")


if __name__ == "__main__":
    main()
