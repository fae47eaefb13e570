"""Mutation audit: plant known faults one at a time and check that the tests covering them fail.

Each :class:`Mutation` replaces one exact snippet of one source file (or runs a
small function on a scratch copy, e.g. to put random weights into a bundled
pipeline). The repository is copied once into a temporary directory; every
mutant is applied to that copy, its covering tests run there with
``PYTHONPATH=<copy>/src`` (so the copy shadows the editable install) under a
timeout, and the file is restored before the next mutant. The working tree is
never modified.

A mutant is *killed* when its tests fail (or time out), *survived* when they
pass. ``--check`` only verifies that every snippet still occurs exactly once.

Run it like a benchmark (minutes on two cores; not part of the test suite)::

    OMP_NUM_THREADS=1 python benchmarks/mutation_audit.py            # all mutants
    python benchmarks/mutation_audit.py --layer samplers --layer trainers
    python benchmarks/mutation_audit.py --only ddpm-variance-x1.3 --verbose
    python benchmarks/mutation_audit.py --check                       # snippets still present?
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "examples", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Mutation:
    """One planted fault: ``original`` -> ``mutated`` in ``path``, caught by ``tests`` (pytest node ids)."""

    name: str
    layer: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]
    issue: bool = False  # one of the fault classes that survived the first audit (issue 17)
    apply: Callable[[Path], None] | None = field(default=None, compare=False)  # instead of a text edit


def _randomise(path: Path) -> None:
    """Replace every floating-point tensor of a safetensors file by Gaussian noise of the same scale."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    generator = torch.Generator().manual_seed(0)
    for key, value in tensors.items():
        if value.is_floating_point() and "running" not in key:
            scale = float(value.std()) if value.numel() > 1 else 1.0
            tensors[key] = torch.randn(value.shape, generator=generator, dtype=value.dtype) * max(scale, 1e-3)
    save_file(tensors, path)


def _randomise_bundled_unet(root: Path) -> None:
    _randomise(root / "src/thermogen/pretrained/ddim-mnist/model/model.safetensors")


def _randomise_bundled_ebm(root: Path) -> None:
    _randomise(root / "src/thermogen/pretrained/ebm-mnist/energy_model/model.safetensors")


T = "tests/"
PIPE = T + "pipelines/test_diffusion_pipeline.py"
UPPER = T + "pipelines/test_upper_layers.py"
TRAIN = T + "training/test_training_oracles.py"
SAMP = T + "samplers/diffusion/test_samplers.py"
SAMP2 = T + "samplers/diffusion/test_sampler_promises.py"
STATS = T + "testing/test_statistical_power.py"
EBMS = T + "samplers/energy/test_energy_samplers.py"
BUF = T + "test_replay_buffer.py"
EBMP = T + "pipelines/test_ebm_pipeline.py"
RECIPE = T + "training/test_training_recipe.py"
PROTOCOL = T + "samplers/diffusion/test_sampler_protocol.py"
FEW = T + "samplers/diffusion/test_few_step_samplers.py"
FEW_REF = T + "samplers/diffusion/test_few_step_reference.py"
LEGACY = T + "pipelines/test_legacy_formats.py"

MUTATIONS: tuple[Mutation, ...] = (
    # ---- pipelines (issue 17) -------------------------------------------------------------------
    Mutation(
        "pipeline-returns-last-x",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "denormalize(result.pred_original_sample.float())",
        "denormalize(result.sample.float())",
        (PIPE, UPPER),
        issue=True,
    ),
    Mutation(
        "pipeline-eta-halved",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "self.sampler.to_config(), eta=eta)",
        "self.sampler.to_config(), eta=eta / 2)",
        (PIPE, UPPER),
        issue=True,
    ),
    Mutation(
        "slerp-is-lerp",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "mixed = (torch.sin((1 - fraction) * omega) * b + torch.sin(fraction * omega) * a) / math.sin(omega)",
        "mixed = (1 - fraction) * b + fraction * a",
        (PIPE, UPPER),
        issue=True,
    ),
    Mutation(
        "denormalize-forgets-mean",
        "pipelines",
        "src/thermogen/normalizer.py",
        "return x * std + mean",
        "return x * std",
        (PIPE, UPPER),
        issue=True,
    ),
    Mutation(
        "fit-stores-variance",
        "pipelines",
        "src/thermogen/normalizer.py",
        ".clamp_min(1e-12).sqrt()",
        ".clamp_min(1e-12)",
        (PIPE, UPPER, T + "data/test_data.py"),
        issue=True,
    ),
    # ---- save / load (issue 17) ------------------------------------------------------------------
    Mutation(
        "sampler-saved-with-default-config",
        "saveload",
        "src/thermogen/pipelines/base.py",
        "component.write_to(directory / name)",
        "(type(component)() if name == 'sampler' else component).write_to(directory / name)",
        (PIPE, UPPER, T + "test_hub.py"),
        issue=True,
    ),
    Mutation(
        "push-private-ignored",
        "saveload",
        "src/thermogen/hub.py",
        "api.create_repo(repo_id, private=private, exist_ok=True)",
        "api.create_repo(repo_id, private=False, exist_ok=True)",
        (T + "test_hub.py",),
        issue=True,
    ),
    # ---- trainers (issue 17) ---------------------------------------------------------------------
    Mutation(
        "ema-never-updated",
        "trainers",
        "src/thermogen/training/diffusion.py",
        "        self.ema.update(self.model, update=self.step)\n",
        "",
        (TRAIN, T + "training/test_diffusion_training.py"),
        issue=True,
    ),
    Mutation(
        "signal-noise-swapped-in-loss",
        "trainers",
        "src/thermogen/training/diffusion.py",
        "noisy = signal_rate * x0 + noise_rate * noise",
        "noisy = noise_rate * x0 + signal_rate * noise",
        (TRAIN, T + "training/test_diffusion_training.py"),
        issue=True,
    ),
    Mutation(
        "weight-average-keeps-the-last",
        "trainers",
        "src/thermogen/pipelines/averaging.py",
        "averaged[name] = (total / len(states)).to(tensor.dtype)",
        "averaged[name] = states[-1][name].detach().clone()",
        (T + "training/test_snapshot_averaging.py",),
    ),
    Mutation(
        "snapshot-of-the-wrong-step",
        "trainers",
        "src/thermogen/training/loop.py",
        'return self.out_dir / SNAPSHOTS_DIR / f"step_{step:06d}"',
        'return self.out_dir / SNAPSHOTS_DIR / f"step_{step - 1:06d}"',
        (T + "training/test_snapshot_averaging.py",),
    ),
    Mutation(
        "ebm-regulariser-dropped",
        "trainers",
        "src/thermogen/losses/contrastive_divergence.py",
        "return ContrastiveDivergence(cdiv + reg, cdiv,",
        "return ContrastiveDivergence(cdiv, cdiv,",
        (TRAIN, EBMP, T + "losses/test_contrastive_divergence.py"),
        issue=True,
    ),
    Mutation(
        "batches-not-reshuffled",
        "trainers",
        "src/thermogen/training/batches.py",
        "manual_seed(self.seed + epoch)",
        "manual_seed(self.seed)",
        (TRAIN, T + "training/test_diffusion_training.py"),
        issue=True,
    ),
    # ---- bundled models (issue 17) ---------------------------------------------------------------
    Mutation(
        "bundled-ddim-random-weights",
        "bundled",
        "src/thermogen/pretrained/ddim-mnist/model/model.safetensors",
        "",
        "",
        (T + "pipelines/test_pretrained.py",),
        issue=True,
        apply=_randomise_bundled_unet,
    ),
    Mutation(
        "bundled-ebm-random-weights",
        "bundled",
        "src/thermogen/pretrained/ebm-mnist/energy_model/model.safetensors",
        "",
        "",
        (T + "pipelines/test_pretrained.py",),
        issue=True,
        apply=_randomise_bundled_ebm,
    ),
    # ---- samplers (issue 17) ---------------------------------------------------------------------
    Mutation(
        "karras-rho-5",
        "samplers",
        "src/thermogen/samplers/diffusion/spacing.py",
        "KARRAS_RHO = 7.0",
        "KARRAS_RHO = 5.0",
        (SAMP2, SAMP),
        issue=True,
    ),
    Mutation(
        "lower-order-final-ignored",
        "samplers",
        "src/thermogen/samplers/diffusion/dpm_solver.py",
        "grid.steps_left(i), grid.num_steps, self.lower_order_final",
        "grid.steps_left(i), grid.num_steps, False",
        (SAMP2, SAMP),
        issue=True,
    ),
    Mutation(
        "sgld-uses-global-rng",
        "samplers",
        "src/thermogen/samplers/energy/sgld.py",
        "noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)",
        "noise = torch.randn(x.shape, dtype=x.dtype, device=x.device)",
        (EBMS, SAMP2),
        issue=True,
    ),
    Mutation(
        "euler-ancestral-noise-x1.1",
        "samplers",
        "src/thermogen/samplers/diffusion/euler.py",
        "prev_sample + (a_prev * sigma_up) * self.randn_like",
        "prev_sample + (1.1 * a_prev * sigma_up) * self.randn_like",
        (SAMP2, SAMP),
        issue=True,
    ),
    Mutation(
        "ddpm-variance-x1.3",
        "samplers",
        "src/thermogen/samplers/diffusion/ddpm.py",
        "variance = s_prev**2 / s2 * beta  #",
        "variance = 1.3 * s_prev**2 / s2 * beta  #",
        (SAMP2, STATS, SAMP),
        issue=True,
    ),
    # ---- fresh mutants: samplers ------------------------------------------------------------------
    Mutation(
        "ddim-sigma-without-eta",
        "samplers",
        "src/thermogen/samplers/diffusion/ddim.py",
        "return eta * (s_prev / s) * math.sqrt",
        "return (s_prev / s) * math.sqrt",
        (UPPER, PIPE, SAMP),
    ),
    Mutation(
        "dpm2m-wrong-extrapolation",
        "samplers",
        "src/thermogen/samplers/diffusion/dpm_solver.py",
        "half_over_r = h / (2.0 * h_0)",
        "half_over_r = h / (3.0 * h_0)",
        (SAMP,),
    ),
    Mutation(
        "mala-backward-proposal-sign",
        "samplers",
        "src/thermogen/samplers/energy/mala.py",
        "backward = x - proposal.point - eta * proposal.score",
        "backward = x - proposal.point + eta * proposal.score",
        (EBMS, STATS),
    ),
    Mutation(
        "hmc-full-final-kick",
        "samplers",
        "src/thermogen/samplers/energy/hmc.py",
        "kick = eps if i < self.num_leapfrog_steps - 1 else 0.5 * eps",
        "kick = eps",
        (EBMS, STATS),
    ),
    Mutation(
        "ula-noise-double",
        "samplers",
        "src/thermogen/samplers/energy/ula.py",
        "math.sqrt(2.0 * self.step_size * self.temperature)",
        "math.sqrt(4.0 * self.step_size * self.temperature)",
        (EBMS, STATS),
    ),
    Mutation(
        "v-prediction-x0-sign",
        "samplers",
        "src/thermogen/parameterisation.py",
        "return Denoised(x0=a * sample - s * output,",
        "return Denoised(x0=a * sample + s * output,",
        (PROTOCOL, SAMP),
    ),
    Mutation(
        "ddpm-fixed-large-noise-at-end",
        "samplers",
        "src/thermogen/samplers/diffusion/ddpm.py",
        "variance = beta if s_prev > 0.0 else 0.0",
        "variance = beta",
        (SAMP2, SAMP),
    ),
    Mutation(
        "diffusion-noise-from-global-rng",
        "samplers",
        "src/thermogen/samplers/diffusion/base.py",
        "noise = torch.randn(sample.shape, generator=generator, dtype=sample.dtype, device=device)",
        "noise = torch.randn(sample.shape, dtype=sample.dtype, device=device)",
        (SAMP2,),
    ),
    Mutation(
        "buffer-restart-from-global-rng",
        "pipelines",
        "src/thermogen/buffers.py",
        "restart = torch.rand(batch_size, generator=generator, device=self.device)",
        "restart = torch.rand(batch_size, device=self.device)",
        (SAMP2, BUF),
    ),
    # ---- the redesign's protocol: loop state, prediction type on the model, carried options ----------
    Mutation(
        "dpm-solver-history-shared-between-loops",
        "samplers",
        "src/thermogen/samplers/diffusion/dpm_solver.py",
        "        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=m0, state=history)\n",
        "        shared = globals().setdefault('_LOOP_HISTORY', [])  # one history for every loop in the process\n"
        "        shared[:] = history\n"
        "        return DiffusionStepOutput(prev_sample=prev_sample, pred_original_sample=m0, state=shared)\n",
        (PROTOCOL + "::test_one_sampler_runs_two_interleaved_loops_as_if_each_ran_alone",),
    ),
    Mutation(
        "legacy-upgrade-drops-prediction-type",
        "saveload",
        "src/thermogen/pipelines/diffusion.py",
        '            if model is not None and "prediction_type" not in model:\n'
        '                configs["model"] = {**model, "prediction_type": legacy}\n',
        "",
        (LEGACY,),
    ),
    Mutation(
        "sampler-swap-drops-shared-options",
        "saveload",
        "src/thermogen/pipelines/base.py",
        "config.update({k: v for k, v in carried_options(cls, saved, swap).items() if k not in given})",
        "carried_options(cls, saved, swap)  # still warns about what it drops, but carries nothing",
        (UPPER + "::test_overrides_as_name_mapping_and_object",),
    ),
    Mutation(
        "denoise-conditions-on-signal-rate",
        "foundation",
        "src/thermogen/interfaces.py",
        "level = torch.full((noisy.shape[0],), noise_rate, dtype=noisy.dtype, device=noisy.device)",
        "level = torch.full((noisy.shape[0],), signal_rate, dtype=noisy.dtype, device=noisy.device)",
        (PROTOCOL, SAMP),
    ),
    # ---- the one-pass multistep steps: corrector folded into the predictor, weights on the host ----
    Mutation(
        "unipc-fold-drops-new-estimate",
        "samplers",
        "src/thermogen/samplers/diffusion/unipc.py",
        "    weights[1] += c_x * correction.c_new\n",
        "",
        (FEW_REF, FEW),
    ),
    Mutation(
        "adams-noise-weight-misses-start",
        "samplers",
        "src/thermogen/samplers/diffusion/adams.py",
        "c_e = s_prev - c_x * s",
        "c_e = s_prev",
        (FEW_REF, FEW),
    ),
    Mutation(
        "dpm-3m-halved-curvature",
        "samplers",
        "src/thermogen/samplers/diffusion/dpm_solver.py",
        "+ 2.0 * phi_2 * d2 for j",
        "+ phi_2 * d2 for j",
        (SAMP,),
    ),
    # ---- fresh mutants: schedules ------------------------------------------------------------------
    Mutation(
        "offset-cosine-no-offset",
        "schedules",
        "src/thermogen/schedules/cosine.py",
        "max_signal_rate: float = 0.95",
        "max_signal_rate: float = 0.99",
        (T + "schedules/test_schedules.py", SAMP),
    ),
    Mutation(
        "scaled-linear-not-squared",
        "schedules",
        "src/thermogen/schedules/linear.py",
        "return roots**2",
        "return roots",
        (T + "schedules/test_schedules.py",),
    ),
    # ---- fresh mutants: pipelines / components ---------------------------------------------------
    Mutation(
        "book-interpolation-swapped-ends",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "mixed = torch.sin(theta) * a + torch.cos(theta) * b",
        "mixed = torch.cos(theta) * a + torch.sin(theta) * b",
        (PIPE,),
    ),
    Mutation(
        "buffer-load-ignores-pointer",
        "pipelines",
        "src/thermogen/buffers.py",
        "self.count, self.pointer = count, pointer",
        "self.count, self.pointer = count, 0",
        (BUF, EBMP),
    ),
    Mutation(
        "buffer-push-no-wrap",
        "pipelines",
        "src/thermogen/buffers.py",
        "self.pointer = (self.pointer + n) % self.capacity",
        "self.pointer = min(self.pointer + n, self.capacity - 1)",
        (BUF,),
    ),
    Mutation(
        "buffer-restarts-7-percent",
        "pipelines",
        "src/thermogen/buffers.py",
        "device=self.device) < self.reinit_prob",
        "device=self.device) < 1.4 * self.reinit_prob",
        (BUF,),
    ),
    Mutation(
        "buffer-restarts-4-percent",
        "pipelines",
        "src/thermogen/buffers.py",
        "device=self.device) < self.reinit_prob",
        "device=self.device) < 0.8 * self.reinit_prob",
        (BUF,),
    ),
    Mutation(
        "buffer-never-draws-newest-slot",
        "pipelines",
        "src/thermogen/buffers.py",
        "indices = torch.randint(self.count, (batch_size,)",
        "indices = torch.randint(max(self.count - 1, 1), (batch_size,)",
        (BUF,),
    ),
    Mutation(
        "buffer-draws-favour-high-slots",
        "pipelines",
        "src/thermogen/buffers.py",
        "indices = torch.randint(self.count, (batch_size,), generator=generator, device=self.device)",
        "indices = torch.randint(self.count, (batch_size,), generator=generator, device=self.device)\n"
        "        indices = torch.where(torch.rand(batch_size, generator=generator) < 0.1, self.count - 1, indices)",
        (BUF,),
    ),
    Mutation(
        "book-interpolation-variance-x1.2",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "mixed = torch.sin(theta) * a + torch.cos(theta) * b",
        "mixed = 1.2**0.5 * (torch.sin(theta) * a + torch.cos(theta) * b)",
        (PIPE,),
    ),
    Mutation(
        "book-interpolation-sqrt-weights",
        "pipelines",
        "src/thermogen/pipelines/diffusion.py",
        "mixed = torch.sin(theta) * a + torch.cos(theta) * b",
        "mixed = fraction.sqrt() * a + (1 - fraction).sqrt() * b",
        (PIPE,),
    ),
    Mutation(
        "override-mapping-ignored",
        "saveload",
        "src/thermogen/pipelines/base.py",
        "return cls.from_config(config, **given)",
        "return cls.from_config(config)",
        (UPPER,),
    ),
    Mutation(
        "model-card-drops-components",
        "saveload",
        "src/thermogen/pipelines/base.py",
        'model_card(config["_class_name"], {k: config[k] for k in self.component_kinds})',
        'model_card(config["_class_name"], {})',
        (UPPER, PIPE),
    ),
    # ---- fresh mutants: trainers ---------------------------------------------------------------------
    Mutation(
        "mse-loss-is-mae",
        "trainers",
        "src/thermogen/losses/denoising.py",
        "per_sample = difference.square().flatten(1).mean(dim=1)",
        "per_sample = difference.abs().flatten(1).mean(dim=1)",
        (TRAIN,),
    ),
    Mutation(
        "v-target-sign",
        "trainers",
        "src/thermogen/losses/denoising.py",
        "return signal_rate * noise - noise_rate * x0",
        "return signal_rate * noise + noise_rate * x0",
        (TRAIN, RECIPE),
    ),
    Mutation(
        "min-snr-v-weight-without-plus-one",
        "trainers",
        "src/thermogen/losses/denoising.py",
        "return torch.clamp(snr, max=gamma) / (snr + 1.0)",
        "return torch.clamp(snr, max=gamma) / snr",
        (TRAIN, RECIPE),
    ),
    Mutation(
        "power-ema-exponent-gamma",
        "trainers",
        "src/thermogen/training/ema.py",
        "return (1.0 - 1.0 / (update + 1)) ** (self.gamma + 1.0)",
        "return (1.0 - 1.0 / (update + 1)) ** self.gamma",
        (RECIPE,),
    ),
    Mutation(
        "uint8-buffer-decode-offset",
        "pipelines",
        "src/thermogen/buffers.py",
        "return stored.float() / _UINT8_SCALE - 1.0",
        "return stored.float() / 128.0 - 1.0",
        (T + "test_buffer_storage.py", BUF),
    ),
    Mutation(
        "ema-decay-ignores-warmup",
        "trainers",
        "src/thermogen/training/ema.py",
        "return min(self.decay, (1 + update) / (10 + update)) if self.warmup else self.decay",
        "return self.decay",
        (TRAIN, T + "training/test_diffusion_training.py"),
    ),
    Mutation(
        "ebm-no-real-noise",
        "trainers",
        "src/thermogen/training/ebm.py",
        "real = (real + config.real_noise * torch.randn",
        "real = (real + 0.0 * torch.randn",
        (TRAIN,),
    ),
    Mutation(
        "ebm-grad-clip-removed",
        "trainers",
        "src/thermogen/training/ebm.py",
        "        nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)\n",
        "",
        (TRAIN,),
    ),
    Mutation(
        "classifier-never-steps",
        "trainers",
        "src/thermogen/mnist/train_classifier.py",
        "optimizer.step()",
        "optimizer.zero_grad()",
        (T + "mnist/test_train_classifier.py",),
    ),
    # ---- fresh mutants: metrics -------------------------------------------------------------------------
    Mutation(
        "frechet-no-cross-sqrt",
        "metrics",
        "src/thermogen/metrics/frechet.py",
        ".clamp(min=0).sqrt().sum()",
        ".clamp(min=0).sum()",
        (T + "metrics/test_metrics.py",),
    ),
    Mutation(
        "kid-biased-diagonal",
        "metrics",
        "src/thermogen/metrics/kid.py",
        "(k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))",
        "(k_xx.sum() + k_yy.sum()) / (m * m)",
        (T + "metrics/test_metrics.py",),
    ),
    # ---- fresh mutants: foundation and data ------------------------------------------------------
    Mutation(
        "weights-shape-check-skipped",
        "foundation",
        "src/thermogen/weights.py",
        "if found[k].shape != expected[k].shape",
        "if False",
        (T + "test_weights_and_atomic.py", T + "test_config.py"),
    ),
    Mutation(
        "config-unknown-keys-kept",
        "foundation",
        "src/thermogen/config.py",
        "        given = {k: v for k, v in given.items() if k in params}\n",
        "",
        (T + "test_config.py",),
    ),
    Mutation(
        "registry-plugin-beats-builtin",
        "foundation",
        "src/thermogen/registry.py",
        "return (provider.distribution != BUILTIN_DISTRIBUTION, provider.distribution)",
        "return (provider.distribution == BUILTIN_DISTRIBUTION, provider.distribution)",
        (T + "test_registry.py",),
    ),
    Mutation(
        "ebm-from-unit-offset",
        "pipelines",
        "src/thermogen/pixels.py",
        "return images * 2.0 - 1.0",
        "return images * 2.0 - 0.9",
        (EBMP, UPPER, T + "test_pixels.py"),
    ),
    Mutation(
        "pil-output-truncates",
        "pipelines",
        "src/thermogen/pipelines/images.py",
        ".permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)",
        ".permute(1, 2, 0).numpy() * 255).astype(np.uint8)",
        (UPPER, PIPE),
    ),
    # ---- fresh mutants: cli --------------------------------------------------------------------------
    Mutation(
        "cli-schedules-wrong-end",
        "cli",
        "src/thermogen/cli/components.py",
        "end = float(schedule.signal_rate(0.0)), float(schedule.signal_rate(1.0))",
        "end = float(schedule.signal_rate(0.0)), float(schedule.signal_rate(0.5))",
        (UPPER,),
    ),
    Mutation(
        "cli-list-omits-bundled",
        "cli",
        "src/thermogen/cli/components.py",
        '        for name in bundled_names():\n            print(f"  {name}")\n',
        "",
        (UPPER,),
    ),
)


def check(mutation: Mutation, root: Path) -> str | None:
    """None if the mutation applies to ``root``, else why not."""
    if mutation.apply is not None:
        return None if (root / mutation.path).is_file() else f"{mutation.path} missing"
    if not (root / mutation.path).is_file():
        return f"{mutation.path} missing"
    text = (root / mutation.path).read_text(encoding="utf-8")
    count = text.count(mutation.original)
    return None if count == 1 else f"snippet occurs {count} times in {mutation.path}"


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float, verbose: bool) -> tuple[str, float]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed (timeout)", time.perf_counter() - start
    if verbose:
        print(done.stdout[-3000:])
    outcome = "survived" if done.returncode == 0 else "killed" if done.returncode == 1 else f"error {done.returncode}"
    return outcome, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", action="append", help="only mutants of this layer (repeatable)")
    parser.add_argument("--only", action="append", help="only the mutant with this name (repeatable)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant (a timeout is a kill)")
    parser.add_argument("--check", action="store_true", help="only check that every snippet applies")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    chosen = [
        m for m in MUTATIONS if (not args.layer or m.layer in args.layer) and (not args.only or m.name in args.only)
    ]
    problems = {m.name: why for m in chosen if (why := check(m, ROOT)) is not None}
    for name, why in problems.items():
        print(f"STALE  {name}: {why}")
    if args.check or problems:
        print(f"{len(chosen) - len(problems)}/{len(chosen)} mutants apply")
        return 1 if problems else 0

    results: dict[str, list[tuple[Mutation, str]]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="thermogen-mutants-") as tmp:
        copy = Path(tmp)
        for name in COPIED:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            elif source.is_file():
                shutil.copy2(source, copy / name)
        for mutation in chosen:
            target = copy / mutation.path
            pristine = target.read_bytes()
            try:
                if mutation.apply is not None:
                    mutation.apply(copy)
                else:
                    text = pristine.decode("utf-8")
                    target.write_text(text.replace(mutation.original, mutation.mutated), encoding="utf-8")
                outcome, seconds = run_tests(copy, mutation.tests, args.timeout, args.verbose)
            finally:
                target.write_bytes(pristine)
            tag = " [issue 17]" if mutation.issue else ""
            print(f"{outcome:<17} {seconds:6.1f}s  {mutation.layer:<10} {mutation.name}{tag}", flush=True)
            results.setdefault(mutation.layer, []).append((mutation, outcome))

    print("\nlayer       killed  survived  total")
    killed_all = total_all = 0
    for layer, rows in results.items():
        killed = sum(outcome.startswith("killed") for _, outcome in rows)
        print(f"{layer:<10} {killed:>7} {len(rows) - killed:>9} {len(rows):>6}")
        killed_all += killed
        total_all += len(rows)
    print(f"{'all':<10} {killed_all:>7} {total_all - killed_all:>9} {total_all:>6}")
    print(f"{killed_all}/{total_all} killed in {time.perf_counter() - started:.0f} s")
    survivors = [m.name for rows in results.values() for m, outcome in rows if not outcome.startswith("killed")]
    if survivors:
        print("survivors: " + ", ".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
