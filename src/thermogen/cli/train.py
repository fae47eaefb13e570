"""``thermogen train diffusion|ebm``: train from the command line, resumable, torchrun-ready."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from thermogen.cli.arguments import add_device, add_no_progress, add_threads, positive_int
from thermogen.cli.data_arguments import add_data_arguments, training_set
from thermogen.losses.denoising import LOSS_WEIGHTINGS, PREDICTION_TARGETS
from thermogen.training.lr_schedule import LR_DECAYS

if TYPE_CHECKING:
    from thermogen.training.loop import TrainingLoop


def register(commands: Any) -> None:
    train = commands.add_parser("train", help="train a diffusion model or an energy-based model")
    kinds = train.add_subparsers(dest="model_kind", metavar="KIND", required=True)

    diffusion = kinds.add_parser("diffusion", help="denoising diffusion (U-Net noise predictor, EMA)")
    add_data_arguments(diffusion)
    diffusion.add_argument("--steps", type=positive_int, default=2000, help="optimizer steps in total")
    diffusion.add_argument("--batch-size", type=positive_int, default=64, help="images per step and process")
    diffusion.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate")
    diffusion.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    diffusion.add_argument("--ema", type=float, default=0.999, help="EMA decay")
    diffusion.add_argument(
        "--ema-power",
        type=float,
        default=None,
        help="power-function EMA with this exponent gamma instead of --ema (6.94: sigma_rel 0.10)",
    )
    diffusion.add_argument(
        "--no-ema-warmup", action="store_true", help="constant EMA decay from the first step (the book's behaviour)"
    )
    diffusion.add_argument("--loss", choices=("mae", "mse"), default="mae", help="loss on the prediction")
    diffusion.add_argument(
        "--prediction-type", choices=PREDICTION_TARGETS, default="epsilon", help="training target (saved)"
    )
    diffusion.add_argument("--loss-weighting", choices=LOSS_WEIGHTINGS, default="none", help="per-image weight")
    diffusion.add_argument("--min-snr-gamma", type=float, default=5.0, help="gamma of --loss-weighting min_snr")
    # None: the default of a new run, or what the checkpoint has on --resume (see resume_flags)
    diffusion.add_argument(
        "--model",
        choices=("unet", "ddpm_unet"),
        default=None,
        help="the book's U-Net or the DDPM-style one (default unet)",
    )
    diffusion.add_argument(
        "--widths", type=_int_list, default=None, help="U-Net widths (default: unet 32,64,96,128; ddpm_unet 32,64,128)"
    )
    diffusion.add_argument("--block-depth", type=positive_int, default=None, help="blocks per level (new run: 2)")
    diffusion.add_argument("--no-attention", action="store_true", help="ddpm_unet: no self-attention in the middle")
    diffusion.add_argument("--schedule", default=None, help="registered noise schedule (default offset_cosine)")
    diffusion.add_argument("--sampler", default=None, help="registered sampler saved with the pipeline (default ddim)")
    diffusion.add_argument("--sample-every", type=positive_int, default=500, help="steps between sample grids")
    diffusion.add_argument("--checkpoint-every", type=positive_int, default=500, help="steps between checkpoints")
    diffusion.add_argument("--log-every", type=positive_int, default=50, help="steps between log lines")
    _run_arguments(diffusion)
    diffusion.set_defaults(run=run_diffusion)

    ebm = kinds.add_parser("ebm", help="energy-based model by contrastive divergence with a replay buffer")
    add_data_arguments(ebm)
    ebm.add_argument("--epochs", type=float, default=1.0, help="passes over the data (fractions allowed)")
    ebm.add_argument("--batch-size", type=positive_int, default=128, help="images per step and process")
    ebm.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate")
    ebm.add_argument("--langevin-steps", type=positive_int, default=60, help="Langevin steps per training step")
    ebm.add_argument("--step-size", type=float, default=None, help="Langevin step size (new run: 10.0)")
    ebm.add_argument("--noise", type=float, default=None, help="Langevin noise std (default 0.005)")
    ebm.add_argument("--alpha", type=float, default=0.1, help="energy regularisation weight")
    ebm.add_argument("--sample-every", type=positive_int, default=200, help="steps between sample grids")
    ebm.add_argument("--checkpoint-every", type=positive_int, default=200, help="steps between checkpoints")
    ebm.add_argument("--log-every", type=positive_int, default=20, help="steps between log lines")
    _run_arguments(ebm)
    ebm.set_defaults(run=run_ebm)


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory (checkpoint/, samples/, log.jsonl)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoint (a fresh OUT starts at step 0)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the initialisation, data order and noise")
    parser.add_argument(
        "--snapshot-every",
        type=int,
        default=0,
        help="keep the pipeline every this many steps in OUT/snapshots/step_N, for thermogen average-weights "
        "(0: off; a multiple of --checkpoint-every)",
    )
    add_device(parser, default=None, default_text="this process's GPU under torchrun, else cpu")
    add_threads(parser)
    parser.add_argument(
        "--mixed-precision", action="store_true", help="bf16 autocast of the training forward pass (GPU runs)"
    )
    add_no_progress(parser)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--time-budget-minutes",
        type=float,
        default=None,
        help="stop (with a checkpoint) after this much wall time; --resume continues",
    )
    budget.add_argument(
        "--cpu-budget-minutes",
        type=float,
        default=None,
        help="stop (with a checkpoint) after this much CPU time of this process (fair budgets on a shared machine)",
    )
    rates = parser.add_argument_group("learning-rate schedule (a function of the step, so resumes stay exact)")
    rates.add_argument("--lr-warmup-steps", type=int, default=0, help="linear warm-up over this many steps")
    rates.add_argument("--lr-decay", choices=LR_DECAYS, default="none", help="decay after --lr-decay-start")
    rates.add_argument("--lr-decay-start", type=int, default=0, help="step at which the decay begins")
    rates.add_argument("--lr-final-ratio", type=float, default=0.0, help="final rate as a fraction of --lr")


def _loop_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer-config fields both kinds of run take from the same flags (a LoopConfig's, mixed precision)."""
    return {
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "lr_decay": args.lr_decay,
        "lr_decay_start": args.lr_decay_start,
        "lr_final_ratio": args.lr_final_ratio,
        "lr_warmup_steps": args.lr_warmup_steps,
        "seed": args.seed,
        "log_every": args.log_every,
        "checkpoint_every": args.checkpoint_every,
        "sample_every": args.sample_every,
        "snapshot_every": args.snapshot_every,
        "mixed_precision": args.mixed_precision,
    }


def _given(**flags: Any) -> dict[str, Any]:
    """The flags that were typed (None: the recipe's default, or the checkpoint's on --resume)."""
    return {name: value for name, value in flags.items() if value is not None}


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from exc


def _setup(args: argparse.Namespace) -> Any:
    from thermogen.training.distributed import init_process

    return init_process(args.device)


def run_diffusion(args: argparse.Namespace) -> int:
    from thermogen.pipelines.diffusion import DiffusionPipeline
    from thermogen.training.diffusion import DiffusionTrainer, DiffusionTrainingConfig
    from thermogen.training.recipes import build_diffusion_pipeline

    context = _setup(args)
    dataset = training_set(args, "diffusion")
    config = DiffusionTrainingConfig(
        steps=args.steps,
        weight_decay=args.weight_decay,
        ema_decay=args.ema,
        ema_warmup=not args.no_ema_warmup,
        ema_power=args.ema_power,
        loss=args.loss,
        prediction_type=args.prediction_type,
        loss_weighting=args.loss_weighting,
        min_snr_gamma=args.min_snr_gamma,
        **_loop_fields(args),
    )
    network = _given(
        model=args.model, widths=args.widths, block_depth=args.block_depth, schedule=args.schedule, sampler=args.sampler
    )

    def build() -> DiffusionPipeline:
        return build_diffusion_pipeline(
            dataset, attention=not args.no_attention, prediction_type=args.prediction_type, **network
        )

    shape = tuple(dataset[0].shape)
    trainer = lambda p: DiffusionTrainer(p, dataset, args.out, config, context)  # noqa: E731
    return _train(args, context, shape, DiffusionPipeline, build, trainer)


def run_ebm(args: argparse.Namespace) -> int:
    from thermogen.pipelines.ebm import EBMPipeline
    from thermogen.training.ebm import EBMTrainer, EBMTrainingConfig
    from thermogen.training.recipes import build_ebm_pipeline

    context = _setup(args)
    dataset = training_set(args, "ebm")
    steps_per_epoch = len(dataset) // (args.batch_size * context.world_size)
    config = EBMTrainingConfig(
        steps=max(1, round(args.epochs * steps_per_epoch)),
        alpha=args.alpha,
        langevin_steps=args.langevin_steps,
        **_loop_fields(args),
    )
    shape = tuple(dataset[0].shape)
    langevin = _given(step_size=args.step_size, noise_std=args.noise)

    def build() -> EBMPipeline:
        return build_ebm_pipeline(shape, args.langevin_steps, **langevin)

    return _train(args, context, shape, EBMPipeline, build, lambda p: EBMTrainer(p, dataset, args.out, config, context))


def _train(
    args: argparse.Namespace,
    context: Any,
    sample_shape: tuple[int, ...],
    pipeline_class: Any,
    build: Callable[[], Any],
    make_trainer: Callable[[Any], TrainingLoop],
) -> int:
    """Build the pipeline (or load it from OUT/checkpoint with --resume), train, report.

    The main process holds OUT's lock for the whole run. A fresh run builds its
    network from ``--seed``; ``--resume`` on a folder that shows an earlier run
    but has no checkpoint, or with flags that contradict the checkpoint, refuses.
    """
    import contextlib

    from thermogen.cli.resume_flags import check_resume_flags
    from thermogen.errors import ConfigError
    from thermogen.training.checkpoint import PIPELINE_DIR
    from thermogen.training.loop import CHECKPOINT_DIR
    from thermogen.training.run_folder import RunLock, checkpoint_to_resume, previous_run

    for budget in (args.time_budget_minutes, args.cpu_budget_minutes):
        if budget is not None and not budget > 0:
            raise ValueError(f"time budget of {budget} minutes; expected a positive number of minutes")

    with RunLock(args.out) if context.is_main else contextlib.nullcontext() as lock:
        if lock is not None and lock.stale_holder:
            print(f"note: took over the lock of a run that is no longer running (pid {lock.stale_holder.get('pid')})")
        checkpoint = Path(args.out) / CHECKPOINT_DIR
        if args.resume:
            found = checkpoint_to_resume(args.out)
        else:
            found = None
            signs = previous_run(args.out) + (["checkpoint/"] if checkpoint.exists() else [])
            if signs and context.is_main:
                raise ConfigError(
                    f"{args.out} already holds a run ({'; '.join(signs)}); pass --resume to continue it, "
                    "or choose another --out"
                )
        if found is not None:
            pipeline = pipeline_class.from_pretrained(found / PIPELINE_DIR)
            check_resume_flags(args, pipeline, sample_shape)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(args.seed)  # the initialisation is part of the run: a function of --seed
                pipeline = build()
        trainer = make_trainer(pipeline)
        if found is not None:
            trainer.load_checkpoint()
            if trainer.context.is_main:
                print(f"resumed from {checkpoint} at step {trainer.step}")
        budget, clock = args.time_budget_minutes, time.perf_counter
        if args.cpu_budget_minutes is not None:
            budget, clock = args.cpu_budget_minutes, time.process_time
        budget_s = None if budget is None else 60.0 * budget
        trainer.train(progress=not args.no_progress, time_budget_s=budget_s, clock=clock)
        if trainer.context.is_main:
            print(f"done: {trainer.step} steps; pipeline in {checkpoint / PIPELINE_DIR}")
    return 0
