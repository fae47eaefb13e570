"""Write ``few_step_reference.safetensors``: diffusers' DDIM, UniPC and DEIS steps on an exact predictor.

Run once, with diffusers installed (it is not a thermogen dependency)::

    python tests/reference/make_few_step_reference.py

The tests (tests/samplers/diffusion/test_few_step_reference.py) only read the file. Setup:

* betas in float64 (diffusers stores float32 tables; they are replaced after
  construction, and so are UniPC's and DEIS's float32 ``sigmas``):
  ``linear`` (1e-4 .. 0.02) and ``improved_cosine`` (diffusers'
  ``squaredcos_cap_v2``, Nichol & Dhariwal 2021 eq. 17 with s = 0.008, capped
  at 0.999), T = 1000. improved_cosine has alpha_bar = 2.4e-9 at t = 1.
* model: the exact noise predictor of thermogen's 2-D test mixture
  (:class:`thermogen.testing.NoisyMixturePredictor`), called with the noise
  level sqrt(1 - alphas_cumprod[k]) of integer step k (t = (k + 1) / T).
* sample: x_T = randn(64, 2) (float64, seed 0).

Keys, for each case ``<name>``: ``<name>/timesteps`` (integer steps visited),
``<name>/samples`` (steps + 1, 64, 2: x_T then each step's result),
``<name>/pred_x0`` (DDIM only). The metadata holds each case's settings as JSON.
For ``linspace`` DDIM, ``num_inference_steps`` is set per step so that
diffusers' stride ``T // n`` is the actual gap to the next timestep (see
make_ddim_reference.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DEISMultistepScheduler, UniPCMultistepScheduler
from safetensors.torch import save_file

from thermogen.testing import GaussianMixture, NoisyMixturePredictor

T = 1000
OUT = Path(__file__).with_name("few_step_reference.safetensors")
MIX = GaussianMixture([[-1.2, 0.0], [1.0, 1.5], [1.5, -2.25]], [0.3, 0.3, 0.3], [0.5, 0.3, 0.2])
PREDICTOR = NoisyMixturePredictor(MIX)


def float64_betas(beta_schedule: str) -> torch.Tensor:
    if beta_schedule == "linear":
        return torch.linspace(1e-4, 0.02, T, dtype=torch.float64)

    def f(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return torch.tensor([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=torch.float64)


def alphas_cumprod(beta_schedule: str) -> torch.Tensor:
    return torch.cumprod(1.0 - float64_betas(beta_schedule), dim=0)


def model(x: torch.Tensor, k: int, table: torch.Tensor) -> torch.Tensor:
    level = torch.full((x.shape[0],), float((1.0 - table[k]).sqrt()), dtype=torch.float64)
    return PREDICTOR(x, level)


def float64_tables(scheduler: object, beta_schedule: str) -> None:
    betas = float64_betas(beta_schedule)
    scheduler.betas = betas
    scheduler.alphas = 1.0 - betas
    scheduler.alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    if hasattr(scheduler, "final_alpha_cumprod"):
        one = scheduler.config.set_alpha_to_one
        scheduler.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64) if one else scheduler.alphas_cumprod[0]
    for name in ("alpha_t", "sigma_t"):
        if hasattr(scheduler, name):
            setattr(scheduler, name, getattr(scheduler, name).to(torch.float64))
    if hasattr(scheduler, "alpha_t"):
        scheduler.alpha_t = scheduler.alphas_cumprod.sqrt()
        scheduler.sigma_t = (1 - scheduler.alphas_cumprod).sqrt()
        scheduler.lambda_t = scheduler.alpha_t.log() - scheduler.sigma_t.log()


def float64_sigmas(scheduler: object, final: str) -> None:
    """Replace the float32 sigmas of a multistep scheduler by float64 ones at its integer timesteps."""
    table = scheduler.alphas_cumprod
    steps = scheduler.timesteps.long()
    visited = ((1 - table[steps]) / table[steps]).sqrt()
    last = torch.zeros(1, dtype=torch.float64) if final == "zero" else ((1 - table[0]) / table[0]).sqrt().reshape(1)
    scheduler.sigmas = torch.cat([visited, last])


def stride_steps(stride: int) -> int:
    """An n with T // n == stride."""
    return next(n for n in range(1, T + 1) if T // n == stride)


def ddim_case(x_T: torch.Tensor, beta_schedule: str, steps: int, spacing: str) -> dict[str, torch.Tensor]:
    scheduler = DDIMScheduler(num_train_timesteps=T, timestep_spacing=spacing, clip_sample=False)
    float64_tables(scheduler, beta_schedule)
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps.tolist()
    x, samples, pred_x0 = x_T, [x_T], []
    for i, k in enumerate(timesteps):
        stride = k - timesteps[i + 1] if i + 1 < len(timesteps) else T // steps
        scheduler.num_inference_steps = stride_steps(stride)
        out = scheduler.step(model(x, k, scheduler.alphas_cumprod), k, x)
        x = out.prev_sample
        samples.append(x)
        pred_x0.append(out.pred_original_sample)
    return {"timesteps": torch.tensor(timesteps), "samples": torch.stack(samples), "pred_x0": torch.stack(pred_x0)}


def multistep_case(x_T: torch.Tensor, kind: str, beta_schedule: str, steps: int, **config: object) -> dict:
    if kind == "unipc":
        scheduler = UniPCMultistepScheduler(num_train_timesteps=T, timestep_spacing="trailing", **config)
        final = "zero"
    else:
        scheduler = DEISMultistepScheduler(num_train_timesteps=T, timestep_spacing="trailing", **config)
        final = "first_step"
    float64_tables(scheduler, beta_schedule)
    scheduler.set_timesteps(steps)
    float64_sigmas(scheduler, final)
    timesteps = scheduler.timesteps.tolist()
    x, samples = x_T, [x_T]
    for k in timesteps:
        x = scheduler.step(model(x, k, scheduler.alphas_cumprod), k, x).prev_sample
        samples.append(x)
    return {"timesteps": torch.tensor(timesteps), "samples": torch.stack(samples)}


def cases() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for beta_schedule in ("linear", "improved_cosine"):
        for spacing in ("leading", "trailing", "linspace"):
            for steps in (10, 50):
                found[f"ddim_{beta_schedule}_{spacing}_{steps}"] = {
                    "kind": "ddim",
                    "beta_schedule": beta_schedule,
                    "spacing": spacing,
                    "steps": steps,
                }
    unipc = [
        ("bh1", 1, 10, "linear", []),
        ("bh1", 2, 10, "linear", []),
        ("bh1", 3, 10, "linear", []),
        ("bh2", 2, 10, "linear", []),
        ("bh2", 3, 10, "linear", []),
        ("bh2", 3, 10, "improved_cosine", []),
        ("bh1", 3, 6, "improved_cosine", []),
        ("bh2", 3, 25, "linear", []),
        ("bh2", 2, 10, "linear", [0, 1, 2, 5]),
    ]
    for variant, order, steps, beta_schedule, disabled in unipc:
        name = f"unipc_{variant}_{order}_{beta_schedule}_{steps}" + ("_disabled" if disabled else "")
        found[name] = {
            "kind": "unipc",
            "beta_schedule": beta_schedule,
            "steps": steps,
            "solver_type": variant,
            "solver_order": order,
            "disable_corrector": disabled,
        }
    for order in (1, 2, 3):
        for beta_schedule in ("linear", "improved_cosine"):
            found[f"deis_{order}_{beta_schedule}_10"] = {
                "kind": "deis",
                "beta_schedule": beta_schedule,
                "steps": 10,
                "solver_order": order,
            }
    return found


def main() -> None:
    x_T = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tensors: dict[str, torch.Tensor] = {"x_T": x_T}
    for beta_schedule in ("linear", "improved_cosine"):
        tensors[f"alphas_cumprod/{beta_schedule}"] = alphas_cumprod(beta_schedule)
    all_cases = cases()
    for name, case in all_cases.items():
        settings = dict(case)
        kind, beta_schedule, steps = settings.pop("kind"), settings.pop("beta_schedule"), settings.pop("steps")
        if kind == "ddim":
            result = ddim_case(x_T, str(beta_schedule), int(steps), str(settings["spacing"]))
        else:
            result = multistep_case(x_T, str(kind), str(beta_schedule), int(steps), **settings)
        for key, value in result.items():
            tensors[f"{name}/{key}"] = value
    import diffusers

    metadata = {"diffusers_version": diffusers.__version__, "cases": json.dumps(all_cases)}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(OUT), metadata=metadata)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(tensors)} tensors, diffusers {diffusers.__version__})")


if __name__ == "__main__":
    main()
