"""Produce docs/results.md and its figures from the bundled (or any) pipelines, in one run.

    python examples/make_results.py [--ddim thermogen/ddim-mnist] [--ebm thermogen/ebm-mnist]
        [--keep-diffusion | --keep-ebm] [--compare-ebm "before=runs/ebm-old"]
        [--ddim-log runs/ddim-mnist/log.jsonl] [--ebm-log runs/ebm-mnist/log.jsonl]
        [--n 1000] [--headline-n 2000] [--data-dir /path/to/mnist] [--threads 2]
        [--compare "before BN recalibration=runs/ddim-mnist/checkpoint/pipeline"]

Writes docs/img/*.png, docs/results.json and docs/results.md: sample grids of both
pipelines, the Langevin snapshot strip, the steps sweep with metrics per step
count, a sampler comparison, the interpolation grid, the schedule plot and the
training curves. Every number on the page comes from this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from thermogen import registry
from thermogen.cli.evaluate import generate
from thermogen.mnist import evaluate_images, real_data_floor
from thermogen.pipelines.diffusion import DiffusionPipeline
from thermogen.pipelines.ebm import EBMPipeline
from thermogen.pipelines.images import save_grid
from thermogen.training.log import read_log

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
IMG = DOCS / "img"
SWEEP_STEPS = (1, 2, 3, 5, 10, 20, 50, 100)
SAMPLER_EVALS = (6, 10, 20)
SAMPLERS = ("ddim", "dpmpp_2m", "dpmpp_3m", "unipc", "ipndm", "deis", "euler", "heun")
BOOK_SNAPSHOTS = (0, 1, 3, 5, 10, 30, 50, 100, 300, 999)
METRIC_KEYS = ("fd", "kid_mean", "confident_fraction", "class_entropy")
EBM_HEADING = "## Energy-based model on MNIST"
DIFFUSION_HEADING = "## Diffusion on MNIST"
ABLATION_HEADING = "### Training-recipe ablation"
MEASUREMENT = """\
## How sample quality is measured

```bash
thermogen evaluate PIPELINE --n 2000 [--steps S] [--sampler NAME] [--seed 0] [--json out.json]
```

This generates `--n` images and scores them with `thermogen.mnist.evaluate_images`
against the 10,000 MNIST test images. It uses the features of thermogen's own
MNIST classifier (`thermogen/mnist/weights`, 99.18 % test accuracy),
because Inception features neither exist offline nor suit 28 × 28 digits:

- **FD**: the Fréchet distance between the classifier's 128-d penultimate
  features of the samples and of the test images (the FID recipe, on different
  features);
- **KID**: the kernel inception distance on the same features;
- **confident**: the share of samples that the classifier gives one class with
  probability ≥ 0.9 (legible digits). Uniform noise is also "confidently" one
  digit, so read it together with FD and the class entropy;
- **class entropy**: the entropy of the histogram of predicted classes
  (diversity; ln 10 ≈ 2.303 when all ten digits are equally frequent); the
  histogram itself (how many of each digit 0-9) is printed and stored as `class_counts`.

FD and KID on these features are **not** on the Inception (FID) scale, and FD is
biased upwards at small N. Compare them only with numbers made by this
classifier, at the same N. Every table therefore has the **real-data floor**: the same
metrics for N real training images, which is what a perfect generator would get at the same N.
"""


def metrics_row(label: str, m: dict[str, Any], seconds: float | None = None) -> str:
    cells = [
        label,
        f"{m['fd']:.2f}",
        f"{m['kid_mean']:.3f}",
        f"{m['confident_fraction']:.3f}",
        f"{m['class_entropy']:.3f}",
    ]
    if seconds is not None:
        cells.append(f"{seconds:.1f}")
    return "| " + " | ".join(cells) + " |"


def sampler_label(sampler: Any) -> str:
    """The sampler's registered name and the settings that differ from its defaults, e.g. ``unipc (spacing karras)``."""
    name = sampler.to_config()["_class_name"]
    defaults = type(sampler)().config
    changed = [f"{k} {v}" for k, v in sampler.config.items() if defaults.get(k) != v]
    return f"{name} ({', '.join(changed)})" if changed else name


def timed_metrics(pipe: Any, n: int, steps: int, seed: int, data_dir: str | None) -> tuple[dict[str, Any], float]:
    """Generate ``n`` images (timed) and compute their metrics."""
    start = time.perf_counter()
    images = generate(pipe, n, 250, steps, torch.Generator().manual_seed(seed))
    seconds = time.perf_counter() - start
    return evaluate_images(images, data_dir=data_dir), seconds


def plot_curves(log: list[dict[str, Any]], keys: tuple[str, ...], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.2))
    for ax, key in zip(axes if len(keys) > 1 else [axes], keys):
        ax.plot([e["step"] for e in log], [e[key] for e in log])
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def diffusion_results(args: argparse.Namespace, results: dict[str, Any], lines: list[str]) -> None:
    pipe = DiffusionPipeline.from_pretrained(args.ddim)
    pipe.progress = False
    bundled = sampler_label(pipe.sampler)
    g = torch.Generator().manual_seed(0)
    grid = pipe(batch_size=64, num_inference_steps=20, generator=g, output_type="tensor").images
    save_grid(grid, IMG / "ddim_samples.png", nrow=8)

    sweep = pipe.steps_sweep(steps=SWEEP_STEPS, batch_size=10, seed=42)
    save_grid(torch.cat([sweep[s] for s in SWEEP_STEPS]), IMG / "ddim_steps_sweep.png", nrow=10)

    rows = []
    g = torch.Generator().manual_seed(100)
    for _ in range(5):
        a, b = pipe.make_noise(1, g)[0], pipe.make_noise(1, g)[0]
        rows.append(pipe.interpolate(a, b, num=11, num_inference_steps=20).images)
    save_grid(torch.cat(rows), IMG / "ddim_interpolation.png", nrow=11)

    floor = real_data_floor(args.n, data_dir=args.data_dir)
    headline_floor = real_data_floor(args.headline_n, data_dir=args.data_dir)
    headline, headline_s = timed_metrics(pipe, args.headline_n, 20, 1, args.data_dir)
    results["ddim"] = {
        "floor": floor,
        "headline_floor": headline_floor,
        "sampler": bundled,
        "headline": headline,
        "compared": {},
        "sweep": {},
        "samplers": {},
    }
    compared_rows = []
    for label, other in args.compare:
        m, s = timed_metrics(DiffusionPipeline.from_pretrained(other), args.headline_n, 20, 1, args.data_dir)
        results["ddim"]["compared"][label] = {**m, "pipeline": other, "seconds": s}
        compared_rows.append(metrics_row(f"{label} (`{other}`)", m, s))
        print(f"{label}: {m}")
    for steps in SWEEP_STEPS:
        m, s = timed_metrics(pipe, args.n, steps, 2, args.data_dir)
        results["ddim"]["sweep"][steps] = {**m, "seconds": s}
        print(f"{bundled} {steps} steps: {m}")
    swaps = [(f"{bundled}, the pipeline's", pipe)]  # the pipeline's own sampler first, then each at its defaults
    # an object, not a name: a name would keep the options it shares with the saved sampler (its spacing)
    swaps += [
        (name, DiffusionPipeline.from_pretrained(args.ddim, sampler=registry.get("samplers", name)()))
        for name in SAMPLERS
    ]
    for label, swapped in swaps:
        swapped.progress = False
        per_step = swapped.sampler.evaluations_per_step
        for evals in SAMPLER_EVALS:
            steps = max(1, evals // per_step)
            m, s = timed_metrics(swapped, args.n, steps, 2, args.data_dir)
            results["ddim"]["samplers"][f"{label} @ {evals}"] = {**m, "seconds": s, "steps": steps}
            print(f"{label} {evals} evaluations: {m}")
    for label, spec in args.row:
        other, _, steps_text = spec.rpartition(":")
        m, s = timed_metrics(DiffusionPipeline.from_pretrained(other), args.n, int(steps_text), 2, args.data_dir)
        results["ddim"]["samplers"][label] = {**m, "seconds": s, "steps": int(steps_text), "pipeline": other}
        print(f"{label}: {m}")

    card = results["ddim"]
    met = {
        "FD <= 20": card["headline"]["fd"] <= 20.0,
        ">= 90% confident": card["headline"]["confident_fraction"] >= 0.9,
        "class entropy >= 2.25": card["headline"]["class_entropy"] >= 2.25,
    }
    results["ddim"]["goals"] = met
    lines += [
        DIFFUSION_HEADING,
        "",
        f"Pipeline: `{args.ddim}`. Samples with 20 steps of its sampler, {bundled}, seed 0:",
        "",
        "![diffusion samples](img/ddim_samples.png)",
        "",
        f"### Quality at 20 steps (N = {args.headline_n})",
        "",
        "| | FD | KID | confident (>= 0.9) | class entropy | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        metrics_row(f"{bundled}, 20 steps", card["headline"], headline_s),
        *compared_rows,
        metrics_row("real training images (floor)", card["headline_floor"]),
        "",
        "Goals: "
        + ", ".join(f"{k}: **{'met' if v else 'not met'}**" for k, v in met.items())
        + f" (FD ratio {card['headline']['fd'] / card['headline_floor']['fd']:.2f}).",
        "",
        f"### The number of steps (N = {args.n} per row)",
        "",
        f"The same initial noise sampled with 1, 2, 3, 5, 10, 20, 50 and 100 steps of {bundled} (one row each):",
        "",
        "![steps sweep](img/ddim_steps_sweep.png)",
        "",
        "| steps | FD | KID | confident | class entropy | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        *[metrics_row(str(s), card["sweep"][s], card["sweep"][s]["seconds"]) for s in SWEEP_STEPS],
        metrics_row("real images (floor)", floor),
        "",
        f"### Samplers by number of model evaluations (N = {args.n})",
        "",
        "Each sampler at its default settings unless named; the pipeline's own sampler first.",
        "",
        "| sampler @ evaluations | FD | KID | confident | class entropy | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        *[metrics_row(k, v, v["seconds"]) for k, v in card["samplers"].items()],
        "",
        "### Interpolation in noise space",
        "",
        "Five rows of 11 frames: the book's variance-preserving blend sin(θ)·a + cos(θ)·b of two initial noises.",
        "",
        "![interpolation](img/ddim_interpolation.png)",
        "",
    ]


def ood_energies(pipe: EBMPipeline, data_dir: str | None, n: int = 256) -> dict[str, float]:
    """Mean energy of real test digits and of Lippe's out-of-distribution variants (lower = more likely)."""
    from thermogen.data import MNIST

    real = MNIST(data_dir, split="test", preprocess="diffusion").images[:n]
    variants = {
        "real test digits": real,
        "uniform noise": torch.rand(real.shape, generator=torch.Generator().manual_seed(0)),
        "flipped (both axes)": real.flip(-1).flip(-2),
        "shrunk to half size": torch.nn.functional.pad(
            torch.nn.functional.interpolate(real, scale_factor=0.5, mode="bilinear"), (8,) * 4
        ),
    }
    return {name: float(pipe.energy(x).mean()) for name, x in variants.items()}


def ood_lines(energies: dict[str, float]) -> list[str]:
    return [
        "Out-of-distribution check (Lippe's tutorial): mean energy of 256 images, lower = more likely:",
        "",
        "| images | mean energy |",
        "| --- | --- |",
        *[f"| {name} | {value:.4f} |" for name, value in energies.items()],
        "",
    ]


def class_count_row(label: str, m: dict[str, Any]) -> str:
    return "| " + " | ".join([label, *(str(c) for c in m["class_counts"])]) + " |"


def ebm_results(args: argparse.Namespace, results: dict[str, Any], lines: list[str]) -> None:
    pipe = EBMPipeline.from_pretrained(args.ebm)
    pipe.progress = False
    chain = pipe.num_inference_steps
    g = torch.Generator().manual_seed(0)
    out = pipe(batch_size=64, generator=g, output_type="tensor")
    save_grid(out.images, IMG / "ebm_samples.png", nrow=8)
    snapshots = (*(s for s in BOOK_SNAPSHOTS if s < chain - 1), chain - 1)
    strip = pipe(
        batch_size=4,
        generator=torch.Generator().manual_seed(6),
        snapshot_steps=snapshots,
        output_type="tensor",
    )
    assert strip.snapshots is not None
    frames = strip.snapshots.transpose(0, 1).reshape(-1, *strip.snapshots.shape[2:])
    save_grid(frames, IMG / "ebm_langevin_strip.png", nrow=len(snapshots))
    if pipe.buffer is not None and len(pipe.buffer):
        buffered = pipe(
            batch_size=64, num_inference_steps=1, initial_state="buffer", generator=g, output_type="tensor"
        ).images
        save_grid(buffered, IMG / "ebm_buffer.png", nrow=8)
    floor = real_data_floor(args.ebm_n, data_dir=args.data_dir)
    m, seconds = timed_metrics(pipe, args.ebm_n, chain, 1, args.data_dir)
    compared: dict[str, Any] = {}
    for label, other in args.compare_ebm:
        before = EBMPipeline.from_pretrained(other)
        before.progress = False
        cm, cs = timed_metrics(before, args.ebm_n, before.num_inference_steps, 1, args.data_dir)
        compared[label] = {**cm, "pipeline": other, "seconds": cs, "chain": before.num_inference_steps}
        print(f"{label}: {cm}")
    met = {
        ">= 85% confident": m["confident_fraction"] >= 0.85,
        "class entropy >= 2.2": m["class_entropy"] >= 2.2,
        "FD <= 40": m["fd"] <= 40.0,
    }
    ood = ood_energies(pipe, args.data_dir)
    results["ebm"] = {
        "chain": chain, "default_chain": m, "seconds": seconds, "floor": floor, "goals": met, "ood": ood,
        "compared": compared,
    }  # fmt: skip
    lines += [
        EBM_HEADING,
        "",
        f"Pipeline: `{args.ebm}`. {args.ebm_note + ' ' if args.ebm_note else ''}"
        f"64 fresh chains of {chain} Langevin steps (its default) from uniform noise:",
        "",
        "![EBM samples](img/ebm_samples.png)",
        "",
        f"Langevin snapshot strip (steps {', '.join(map(str, snapshots))}; one chain per row):",
        "",
        "![Langevin strip](img/ebm_langevin_strip.png)",
        "",
        "Replay-buffer samples (the persistent chains of training):",
        "",
        "![buffer](img/ebm_buffer.png)",
        "",
        f"| default chains from noise (N = {args.ebm_n}, seed 1) | FD | KID | confident | class entropy | seconds |",
        "| --- | --- | --- | --- | --- | --- |",
        metrics_row(f"EBM ({chain} steps)", m, seconds),
        *[metrics_row(f"{k} (`{v['pipeline']}`, {v['chain']} steps)", v, v["seconds"]) for k, v in compared.items()],
        metrics_row("real images (floor)", floor),
        "",
        "Goals: " + ", ".join(f"{k}: **{'met' if v else 'not met'}**" for k, v in met.items()) + ".",
        "",
        "How often the classifier reads each digit in those samples:",
        "",
        "| | " + " | ".join(map(str, range(10))) + " |",
        "| --- " * 11 + "|",
        class_count_row("EBM", m),
        *[class_count_row(k, v) for k, v in compared.items()],
        class_count_row("real images", floor),
        "",
        *ood_lines(ood),
    ]


def kept_section(page: str, start: str, end: str, what: str) -> list[str]:
    """The lines of ``page`` from the heading ``start`` up to ``end``, ending in one note that they were kept."""
    note = f"(This section is kept from the previous run of the script: {what} is unchanged.)"
    section = page[page.index(start) : page.index(end)].rstrip("\n").splitlines()
    while section and section[-1] in ("", note):  # a section kept before already ends in the note
        section.pop()
    return [*section, "", note, ""]


def _labelled(text: str) -> tuple[str, str]:
    label, sep, pipeline = text.partition("=")
    if not sep or not label or not pipeline:
        raise argparse.ArgumentTypeError(f"{text!r}; expected LABEL=PIPELINE")
    return label, pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ddim", default="thermogen/ddim-mnist")
    parser.add_argument("--ebm", default="thermogen/ebm-mnist")
    parser.add_argument("--ddim-log", default="runs/ddim-mnist/log.jsonl")
    parser.add_argument("--ebm-log", default="runs/ebm-mnist/log.jsonl")
    parser.add_argument("--n", type=int, default=1000, help="images per sweep / sampler row")
    parser.add_argument("--headline-n", type=int, default=2000, help="images for the 20-step headline")
    parser.add_argument("--ebm-n", type=int, default=1000, help="images for the EBM metrics")
    parser.add_argument("--data-dir", default=None, help="MNIST folder (default: $THERMOGEN_MNIST_DIR)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-ebm", action="store_true")
    parser.add_argument(
        "--keep-ebm",
        action="store_true",
        help="reuse the EBM section and figures of the current docs/results.md (the EBM model is unchanged)",
    )
    parser.add_argument(
        "--keep-diffusion",
        action="store_true",
        help="reuse the diffusion section of the current docs/results.md (the diffusion model is unchanged)",
    )
    parser.add_argument(
        "--compare-ebm",
        type=_labelled,
        action="append",
        default=[],
        metavar="LABEL=PIPELINE",
        help="another EBM pipeline for the EBM table and digit histogram (same seed and N), e.g. the one replaced",
    )
    parser.add_argument("--ebm-note", default="", help="a sentence on how the EBM pipeline was made")
    parser.add_argument("--ablation", default=None, help="a markdown table of examples/diffusion_ablation.py")
    parser.add_argument(
        "--row",
        type=_labelled,
        action="append",
        default=[],
        metavar="LABEL=PIPELINE:STEPS",
        help="an extra row of the samplers table (e.g. a pipeline with a fitted grid from thermogen tune-steps)",
    )
    parser.add_argument(
        "--compare",
        type=_labelled,
        action="append",
        default=[],
        metavar="LABEL=PIPELINE",
        help="another diffusion pipeline for the 20-step table (same seed and N), e.g. before a change",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    IMG.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    from thermogen.viz import plot_schedules

    plot_schedules(None, IMG / "schedules.png")
    results: dict[str, Any] = {}
    lines = [
        "# Results",
        "",
        "Everything on this page is produced by `python examples/make_results.py` (this run: "
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {args.threads} CPU threads, "
        f"torch {torch.__version__}).",
        "",
        *MEASUREMENT.splitlines(),
        "",
    ]
    previous_page = (DOCS / "results.md").read_text(encoding="utf-8") if (DOCS / "results.md").is_file() else ""
    previous = json.loads((DOCS / "results.json").read_text()) if (DOCS / "results.json").is_file() else {}
    if args.keep_diffusion and "ddim" in previous and DIFFUSION_HEADING in previous_page:
        end = ABLATION_HEADING if args.ablation and ABLATION_HEADING in previous_page else EBM_HEADING
        results["ddim"] = previous["ddim"]
        lines += kept_section(previous_page, DIFFUSION_HEADING, end, "the diffusion model")
    else:
        diffusion_results(args, results, lines)
    if args.ablation:
        lines += [ABLATION_HEADING, "", *Path(args.ablation).read_text().splitlines(), ""]
    if args.keep_ebm and "ebm" in previous and EBM_HEADING in previous_page:
        results["ebm"] = previous["ebm"]
        lines += kept_section(previous_page, EBM_HEADING, "## Noise schedules", "the EBM")
    elif not args.skip_ebm:
        ebm_results(args, results, lines)

    lines += ["## Noise schedules", "", "![schedules](img/schedules.png)", "", "## Training curves", ""]
    ddim_log, ebm_log = read_log(ROOT / args.ddim_log), read_log(ROOT / args.ebm_log)
    if ddim_log:
        plot_curves(ddim_log, ("loss",), IMG / "ddim_training.png", "diffusion: training loss")
        lines += ["![diffusion training](img/ddim_training.png)", ""]
    if ebm_log:
        plot_curves(ebm_log, ("loss", "cdiv", "real", "fake"), IMG / "ebm_training.png", "EBM: contrastive divergence")
        lines += ["![EBM training](img/ebm_training.png)", ""]
    lines += [f"Total time of this script: {time.perf_counter() - started:.0f} s.", ""]
    (DOCS / "results.md").write_text("\n".join(lines), encoding="utf-8")
    (DOCS / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {DOCS / 'results.md'} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
