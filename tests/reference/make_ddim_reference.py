"""Write ``ddim_reference.safetensors``: diffusers' DDIM (and DDPM, DPM-Solver++ 2M) steps as reference values.

Run once, with diffusers installed (it is not a thermogen dependency)::

    python tests/reference/make_ddim_reference.py

The tests (tests/samplers/diffusion/test_ddim_equivalence.py) only read the file. Setup:

* betas: diffusers' ``linear`` schedule (1e-4 .. 0.02, T = 1000), but in float64:
  diffusers stores float32 betas, so its ``betas`` / ``alphas_cumprod`` /
  ``final_alpha_cumprod`` are replaced by float64 copies after construction.
* model: a fixed fake denoiser, deterministic in (x, t) with t = (k + 1) / T the
  continuous time of integer step k: ``0.5 sin(2x + 3t) + 0.3 x``.
* sample: x_T = randn(2, 1, 4, 4) (float64, seed 0); 10 steps per loop.

Keys, for each case ``<name>``: ``<name>/timesteps`` (diffusers' integer steps
visited), ``<name>/prev_timesteps`` (the step each one went to; -1 = the final
alpha_bar), ``<name>/samples`` (11, ...: x_T then each prev_sample),
``<name>/pred_x0`` (10, ...), ``<name>/noise`` (stochastic cases: the z of each step, drawn
from ``torch.Generator().manual_seed(SEED)``, one draw per step that adds noise).
Also ``alphas_cumprod``, ``x_T`` and ``grid/<spacing>/<offset>/<n>`` (diffusers'
``timesteps`` for several n). The metadata holds each case's settings as JSON.

diffusers' ``DDIMScheduler.step`` always goes back by ``T // n`` training
steps (issue #11347), which is not the next ``linspace`` timestep. For the
``linspace`` loops ``num_inference_steps`` is set, per step, to a value whose
``T // n`` equals the actual stride (9 for 999 -> 888 -> ... -> 0), so the
reference is DDIM on the real grid.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from safetensors.torch import save_file

T = 1000
STEPS = 10
SEED = 1  # generator of the noise z in stochastic cases (one draw per step that adds noise)
OUT = Path(__file__).with_name("ddim_reference.safetensors")


def fake_model(x: torch.Tensor, t: float) -> torch.Tensor:
    return 0.5 * torch.sin(2.0 * x + 3.0 * t) + 0.3 * x


def float64_tables(scheduler: object) -> None:
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    scheduler.betas = betas
    scheduler.alphas = 1.0 - betas
    scheduler.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    if hasattr(scheduler, "final_alpha_cumprod"):
        one = scheduler.config.set_alpha_to_one
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) if one else scheduler.alphas_cumprod[0]
    if hasattr(scheduler, "one"):
        scheduler.one = torch.tensor(1.0, dtype=torch.float64)


def stride_steps(stride: int) -> int:
    """An n with T // n == stride."""
    for n in range(1, T + 1):
        if T // n == stride:
            return n
    raise ValueError(f"no n has {T} // n == {stride}")


def ddim_case(x_T: torch.Tensor, eta: float = 0.0, **config: object) -> dict[str, torch.Tensor]:
    scheduler = DDIMScheduler(beta_schedule="linear", num_train_timesteps=T, **config)
    float64_tables(scheduler)
    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps.tolist()
    x, samples, pred_x0, prevs, noises = x_T, [x_T], [], [], []
    generator = torch.Generator().manual_seed(SEED)
    for i, k in enumerate(timesteps):
        stride = k - timesteps[i + 1] if i + 1 < len(timesteps) else T // STEPS
        scheduler.num_inference_steps = stride_steps(stride)
        prevs.append(k - stride if k - stride >= 0 else -1)
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        out = scheduler.step(fake_model(x, (k + 1) / T), k, x, eta=eta, variance_noise=noise if eta > 0 else None)
        x = out.prev_sample
        samples.append(x)
        pred_x0.append(out.pred_original_sample)
        noises.append(noise)
    result = {
        "timesteps": torch.tensor(timesteps),
        "prev_timesteps": torch.tensor(prevs),
        "samples": torch.stack(samples),
        "pred_x0": torch.stack(pred_x0),
    }
    if eta > 0:
        result["noise"] = torch.stack(noises)
    return result


def ddpm_case(x_T: torch.Tensor, **config: object) -> dict[str, torch.Tensor]:
    scheduler = DDPMScheduler(beta_schedule="linear", num_train_timesteps=T, **config)
    float64_tables(scheduler)
    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps.tolist()
    x, samples, pred_x0, prevs, noises = x_T, [x_T], [], [], []
    generator = torch.Generator().manual_seed(SEED)
    for k in timesteps:
        prev = int(scheduler.previous_timestep(k))
        prevs.append(prev if prev >= 0 else -1)
        state = generator.get_state()
        noise = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        generator.set_state(state)  # the scheduler draws the same z
        out = scheduler.step(fake_model(x, (k + 1) / T), k, x, generator=generator)
        x = out.prev_sample
        samples.append(x)
        pred_x0.append(out.pred_original_sample)
        noises.append(noise if k > 0 else torch.zeros_like(noise))
    return {
        "timesteps": torch.tensor(timesteps),
        "prev_timesteps": torch.tensor(prevs),
        "samples": torch.stack(samples),
        "pred_x0": torch.stack(pred_x0),
        "noise": torch.stack(noises),
    }


def dpm_case(x_T: torch.Tensor, **config: object) -> dict[str, torch.Tensor]:
    scheduler = DPMSolverMultistepScheduler(beta_schedule="linear", num_train_timesteps=T, **config)
    float64_tables(scheduler)
    scheduler.set_timesteps(STEPS)
    timesteps = scheduler.timesteps.tolist()
    x, samples = x_T, [x_T]
    for k in timesteps:
        x = scheduler.step(fake_model(x, (k + 1) / T), k, x).prev_sample
        samples.append(x)
    prevs = [*timesteps[1:], -1]
    return {
        "timesteps": torch.tensor(timesteps),
        "prev_timesteps": torch.tensor(prevs),
        "samples": torch.stack(samples),
    }


DDIM_CASES: dict[str, dict[str, object]] = {
    "ddim_linspace": {"timestep_spacing": "linspace", "clip_sample": False},
    "ddim_leading": {"timestep_spacing": "leading", "clip_sample": False},
    "ddim_trailing": {"timestep_spacing": "trailing", "clip_sample": False},
    "ddim_linspace_no_alpha_one": {"timestep_spacing": "linspace", "clip_sample": False, "set_alpha_to_one": False},
    "ddim_leading_offset_no_alpha_one": {
        "timestep_spacing": "leading",
        "steps_offset": 1,
        "clip_sample": False,
        "set_alpha_to_one": False,
    },
    "ddim_trailing_v": {"timestep_spacing": "trailing", "clip_sample": False, "prediction_type": "v_prediction"},
    "ddim_leading_sample_clip": {"timestep_spacing": "leading", "clip_sample": True, "prediction_type": "sample"},
    "ddim_linspace_threshold": {
        "timestep_spacing": "linspace",
        "clip_sample": False,
        "thresholding": True,
        "dynamic_thresholding_ratio": 0.9,
        "sample_max_value": 1.5,
    },
    "ddim_leading_eta": {"timestep_spacing": "leading", "clip_sample": False, "_eta": 0.5},
}
DDPM_CASES: dict[str, dict[str, object]] = {
    "ddpm_leading": {"timestep_spacing": "leading", "clip_sample": False},
    "ddpm_linspace_large": {"timestep_spacing": "linspace", "clip_sample": False, "variance_type": "fixed_large"},
}
DPM_CASES: dict[str, dict[str, object]] = {
    "dpmpp_2m_trailing": {"timestep_spacing": "trailing", "solver_order": 2, "algorithm_type": "dpmsolver++"},
}


def main() -> None:
    x_T = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    betas = torch.linspace(1e-4, 0.02, T, dtype=torch.float64)
    tensors: dict[str, torch.Tensor] = {"x_T": x_T, "alphas_cumprod": torch.cumprod(1 - betas, 0)}
    for name, config in DDIM_CASES.items():
        settings = {k: v for k, v in config.items() if not k.startswith("_")}
        for key, value in ddim_case(x_T, eta=float(config.get("_eta", 0.0)), **settings).items():
            tensors[f"{name}/{key}"] = value
    for name, config in DDPM_CASES.items():
        for key, value in ddpm_case(x_T, **config).items():
            tensors[f"{name}/{key}"] = value
    for name, config in DPM_CASES.items():
        for key, value in dpm_case(x_T, **config).items():
            tensors[f"{name}/{key}"] = value
    for spacing in ("leading", "trailing", "linspace"):
        for offset in (0, 1) if spacing == "leading" else (0,):
            for n in (1, 3, 7, 10, 50, 333, 1000):
                scheduler = DDIMScheduler(timestep_spacing=spacing, steps_offset=offset)
                if spacing == "leading" and offset and n == T:
                    continue  # 999 + 1 leaves the table
                scheduler.set_timesteps(n)
                tensors[f"grid/{spacing}/{offset}/{n}"] = scheduler.timesteps.clone()
    import diffusers

    metadata = {
        "diffusers_version": diffusers.__version__,
        "cases": json.dumps({**DDIM_CASES, **DDPM_CASES, **DPM_CASES}),
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT), metadata=metadata)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(tensors)} tensors, diffusers {diffusers.__version__})")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
