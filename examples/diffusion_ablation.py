"""The diffusion training-recipe ablation: one arm per change, the same CPU budget each.

    python examples/diffusion_ablation.py [--minutes 15] [--chunk-minutes 5] [--threads 1] [--n 2000]
        [--out runs/ablation] [--table docs/ablation.md] [--data-dir /path/to/mnist]

Each arm is ``thermogen train diffusion ... --cpu-budget-minutes M --resume`` in
``OUT/ARM`` (same seed, batch 64, constant learning rate 1e-3 after 100 warm-up steps),
then ``thermogen evaluate OUT/ARM/checkpoint/pipeline --n N`` (DDIM, 20 steps) and a
64-image grid ``OUT/ARM/grid.png``. Arms add one change at a time:

1. ``book``: the book's U-Net as bundled before (widths 16-32-48-64, BatchNorm, noise level
   at the input only), MAE, 32 x 32 (padded), EMA 0.999 with warm-up;
2. ``ddpm_unet``: the DDPM-style U-Net (widths 16-32-64, noise level in every block, GroupNorm,
   attention at the lowest level), otherwise as 1;
3. ``+min_snr``: MSE with Min-SNR-5 weighting;
4. ``+28x28``: native 28 x 28 (28 -> 14 -> 7), no padding;
5. ``+power_ema``: the power-function EMA (gamma 6.94) instead of 0.999.

Restartable: a finished arm (``OUT/ARM/trained`` exists) is not retrained, an evaluated one
(``OUT/ARM/eval.json``) not re-evaluated. An arm trains in chunks of at most
``--chunk-minutes`` of CPU time, each an exact ``--resume`` of the last, and
``OUT/ARM/cpu_minutes`` adds up the chunks that finished: an interrupted arm continues with
what is left of its budget (it may overspend by at most the chunk that was cut short, whose
steps since the last checkpoint are redone; a first chunk stopped before its first checkpoint
starts over). The table (markdown) goes to ``--table``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from thermogen.atomic import atomic_file

BASE = [
    "--batch-size", "64", "--lr", "1e-3", "--lr-warmup-steps", "100", "--steps", "1000000",
    "--schedule", "offset_cosine", "--sampler", "ddim", "--seed", "0",
    "--log-every", "50", "--checkpoint-every", "200", "--sample-every", "1000000", "--no-progress",
]  # fmt: skip
MODERN = ["--model", "ddpm_unet", "--widths", "16,32,64"]
ARMS: dict[str, list[str]] = {
    "book": ["--model", "unet", "--widths", "16,32,48,64", "--image-size", "32", "--loss", "mae"],
    "ddpm_unet": [*MODERN, "--image-size", "32", "--loss", "mae"],
    "+min_snr": [*MODERN, "--image-size", "32", "--loss", "mse", "--loss-weighting", "min_snr"],
    "+28x28": [*MODERN, "--image-size", "28", "--loss", "mse", "--loss-weighting", "min_snr"],
    "+power_ema": [*MODERN, "--image-size", "28", "--loss", "mse", "--loss-weighting", "min_snr",
                   "--ema-power", "6.94"],
}  # fmt: skip


def thermogen(*args: str) -> None:
    command = [sys.executable, "-m", "thermogen", *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def spent_minutes(folder: Path) -> float:
    """CPU minutes of the chunks of this arm that finished (0 for a new arm)."""
    record = folder / "cpu_minutes"
    return float(record.read_text()) if record.exists() else 0.0


def run_arm(
    name: str, out: Path, minutes: float, chunk: float, threads: int, n: int, data_dir: str | None
) -> dict[str, object]:
    folder = out / name
    data = ["--data-dir", data_dir] if data_dir else []
    while not (folder / "trained").exists():
        spent = spent_minutes(folder)
        if spent >= minutes - 1e-9:
            (folder / "trained").write_text("")
            break
        if spent == 0.0 and folder.exists() and not (folder / "checkpoint").exists():
            shutil.rmtree(folder)  # a first chunk stopped before its first checkpoint: nothing to resume
        budget = min(chunk, minutes - spent)
        thermogen(
            "train", "diffusion", *ARMS[name], *BASE, *data, "--threads", str(threads),
            "--cpu-budget-minutes", f"{budget:.6g}", "--out", str(folder), "--resume",
        )  # fmt: skip
        with atomic_file(folder / "cpu_minutes") as tmp:
            tmp.write_text(f"{spent + budget:.6g}")
    pipeline = str(folder / "checkpoint" / "pipeline")
    if not (folder / "eval.json").exists():
        thermogen("evaluate", pipeline, "--n", str(n), "--json", str(folder / "eval.json"), *data)
        thermogen("sample", pipeline, "--out", str(folder / "grid.png"), "--no-progress")
    result = json.loads((folder / "eval.json").read_text())
    lines = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    return {"arm": name, "steps": lines[-1]["step"], **result["samples"], "floor_fd": result["real_data_floor"]["fd"]}


def table(rows: list[dict[str, object]], minutes: float, n: int) -> str:
    out = [
        f"Same budget per arm: {minutes:g} minutes of CPU time (one thread), seed 0, batch 64; "
        f"DDIM 20 steps, N = {n} (`thermogen evaluate`).",
        "",
        "| arm | steps trained | FD | confident | class entropy | KID |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        out.append(
            f"| {row['arm']} | {row['steps']} | {row['fd']:.1f} | {row['confident_fraction']:.3f} | "
            f"{row['class_entropy']:.3f} | {row['kid_mean']:.4f} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="CPU minutes per arm")
    parser.add_argument("--chunk-minutes", type=float, default=5.0, help="CPU minutes per resumable chunk")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default="runs/ablation")
    parser.add_argument("--table", default=None, help="write the markdown table here")
    parser.add_argument("--data-dir", default=os.environ.get("THERMOGEN_MNIST_DIR"))
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset, in order")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        run_arm(name, out, args.minutes, args.chunk_minutes, args.threads, args.n, args.data_dir)
        for name in args.arms.split(",")
    ]
    text = table(rows, args.minutes, args.n)
    print(text)
    if args.table:
        Path(args.table).write_text(text)


if __name__ == "__main__":
    main()
