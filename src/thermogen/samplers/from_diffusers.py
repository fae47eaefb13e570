"""Read the sampler out of a diffusers ``scheduler_config.json``.

A diffusers scheduler is a noise schedule and a sampler in one object; the
schedule half is mapped by :func:`thermogen.schedules.schedule_from_diffusers_config`,
the sampler half here:

| ``_class_name`` | thermogen sampler |
| --- | --- |
| ``DDIMScheduler`` | ``DDIMSampler`` (eta = 0: diffusers passes eta to ``step``, not the config) |
| ``DDPMScheduler`` | ``DDPMSampler`` |
| ``DPMSolverMultistepScheduler`` | ``DPMSolverPP2M`` / ``DPMSolverPP3M`` (``solver_order`` 2 / 3; 1 = DDIM) |
| ``EulerDiscreteScheduler`` | ``EulerSampler`` |
| ``EulerAncestralDiscreteScheduler`` | ``EulerSampler`` with eta = 1 |
| ``HeunDiscreteScheduler`` | ``HeunSampler`` |

Keys, with diffusers' defaults where missing:

| diffusers key | thermogen argument |
| --- | --- |
| ``timestep_spacing`` | ``spacing`` (``use_karras_sigmas`` -> ``"karras"``, ``use_lu_lambdas`` -> ``"log_snr"``) |
| ``steps_offset`` | ``steps_offset`` |
| ``set_alpha_to_one`` (DDIM) | ``final_time``: True -> ``"zero"``, False -> ``"first_step"`` |
| ``final_sigmas_type`` (DPM-Solver) | ``"zero"`` -> ``"zero"``, ``"sigma_min"`` -> ``"first_step"`` |
| ``prediction_type`` | ``"epsilon"``, ``"sample"``, ``"v_prediction"`` -> ``"v"`` |
| ``clip_sample``, ``clip_sample_range`` | ``clip_sample`` = the range, or None |
| ``thresholding``, ``dynamic_thresholding_ratio``, ``sample_max_value`` | ``dynamic_threshold``, ``sample_max_value`` |
| ``variance_type`` (DDPM) | ``"fixed_small(_log)"`` -> ``"fixed_small"``, ``"fixed_large(_log)"`` -> ``fixed_large`` |
| ``algorithm_type`` (DPM-Solver) | only ``"dpmsolver++"`` |
| ``solver_order``, ``lower_order_final`` (DPM-Solver) | the class, ``lower_order_final`` |

Differences kept on purpose: diffusers' DDIM ``step`` goes back ``T // n``
steps whatever the spacing (issue #11347); here each step goes to the next
grid time. ``DPMSolverMultistepScheduler`` and Euler place ``linspace`` and
``leading`` grids slightly differently from DDIM (n + 1 points, last dropped;
fractional timesteps); thermogen uses one definition per spacing name
(:mod:`thermogen.samplers.spacing`), so those grids differ by up to a few
training steps. Unsupported values (learned variances, other DPM algorithms,
exponential/beta sigmas) raise :class:`~thermogen.errors.ConfigError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule
from thermogen.samplers.ddim import DDIMSampler
from thermogen.samplers.ddpm import DDPMSampler, VarianceType
from thermogen.samplers.diffusion_base import DiffusionSampler
from thermogen.samplers.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.euler import EulerSampler
from thermogen.samplers.heun import HeunSampler
from thermogen.samplers.spacing import FinalTime

SUPPORTED_SCHEDULERS = (
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
)
_PREDICTION_TYPES = {"epsilon": "epsilon", "sample": "sample", "v_prediction": "v"}
_VARIANCE_TYPES = {
    "fixed_small": "fixed_small",
    "fixed_small_log": "fixed_small",
    "fixed_large": "fixed_large",
    "fixed_large_log": "fixed_large",
}


def sampler_from_diffusers_config(config: Mapping[str, Any]) -> DiffusionSampler:
    """Map a diffusers scheduler config (a parsed ``scheduler_config.json``) to a thermogen sampler.

    See the module docstring for the mapping. Raises ConfigError for an unknown
    ``_class_name`` or an unsupported value, naming it.

    Example::

        >>> sampler_from_diffusers_config({"_class_name": "DDIMScheduler", "timestep_spacing": "trailing",
        ...                                "set_alpha_to_one": False, "clip_sample": False})
        DDIMSampler(eta=0.0, spacing='trailing', ..., final_time='first_step', steps_offset=0)
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"diffusers scheduler config is a {type(config).__name__}; expected a dict")
    name = config.get("_class_name")
    if name not in SUPPORTED_SCHEDULERS:
        raise ConfigError(
            f"diffusers scheduler {name!r} has no thermogen sampler; expected one of {list(SUPPORTED_SCHEDULERS)}"
        )
    if name == "DDIMScheduler":
        final: FinalTime = "zero" if _get(config, "set_alpha_to_one", True, bool) else "first_step"
        return DDIMSampler(**_common(config, "leading"), **_clipping(config), final_time=final)
    if name == "DDPMScheduler":
        variance = _choice(config, "variance_type", "fixed_small", _VARIANCE_TYPES)
        return DDPMSampler(
            **_common(config, "leading"), **_clipping(config), variance_type=cast(VarianceType, variance)
        )
    if name == "DPMSolverMultistepScheduler":
        return _dpm_solver(config)
    common = _common(config, "linspace", sigma_keys=True)
    if name == "HeunDiscreteScheduler":
        return HeunSampler(**common)
    return EulerSampler(eta=1.0 if name == "EulerAncestralDiscreteScheduler" else 0.0, **common)


def _dpm_solver(config: Mapping[str, Any]) -> DiffusionSampler:
    algorithm = _get(config, "algorithm_type", "dpmsolver++", str)
    if algorithm != "dpmsolver++":
        raise ConfigError(f"diffusers algorithm_type={algorithm!r} is not supported; expected 'dpmsolver++'")
    order = _get(config, "solver_order", 2, int)
    final = _choice(config, "final_sigmas_type", "zero", {"zero": "zero", "sigma_min": "first_step"})
    common = {**_common(config, "linspace", sigma_keys=True), **_clipping(config, has_clip=False), "final_time": final}
    if order == 1:
        return DDIMSampler(**common)
    if order not in (2, 3):
        raise ConfigError(f"diffusers solver_order={order!r}; expected 1, 2 or 3")
    cls = DPMSolverPP2M if order == 2 else DPMSolverPP3M
    return cls(**common, lower_order_final=_get(config, "lower_order_final", True, bool))


def _common(config: Mapping[str, Any], default_spacing: str, sigma_keys: bool = False) -> dict[str, Any]:
    spacing = _choice(config, "timestep_spacing", default_spacing, {s: s for s in ("leading", "trailing", "linspace")})
    if sigma_keys:
        for key in ("use_exponential_sigmas", "use_beta_sigmas", "use_flow_sigmas"):
            if _get(config, key, False, bool):
                raise ConfigError(f"diffusers {key}=true is not supported; expected karras or plain sigmas")
        if _get(config, "use_karras_sigmas", False, bool):
            spacing = "karras"
        elif _get(config, "use_lu_lambdas", False, bool):
            spacing = "log_snr"
    steps_offset = _get(config, "steps_offset", 0, int)
    prediction = _choice(config, "prediction_type", "epsilon", _PREDICTION_TYPES)
    return {"spacing": spacing, "steps_offset": steps_offset, "prediction_type": prediction}


def _clipping(config: Mapping[str, Any], has_clip: bool = True) -> dict[str, Any]:
    """clip_sample / dynamic_threshold / sample_max_value; thresholding takes precedence (as diffusers)."""
    if _get(config, "thresholding", False, bool):
        return {
            "clip_sample": None,
            "dynamic_threshold": _get(config, "dynamic_thresholding_ratio", 0.995, float),
            "sample_max_value": _get(config, "sample_max_value", 1.0, float),
        }
    clip = has_clip and _get(config, "clip_sample", True, bool)
    return {
        "clip_sample": _get(config, "clip_sample_range", 1.0, float) if clip else None,
        "dynamic_threshold": None,
        "sample_max_value": None,
    }


def _get(config: Mapping[str, Any], key: str, default: Any, kind: type) -> Any:
    value = config.get(key, default)
    if value is None:
        value = default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"diffusers config key {key!r} is {value!r}; expected a {kind.__name__}")
    return value


def _choice(config: Mapping[str, Any], key: str, default: str, mapping: Mapping[str, str]) -> str:
    value = _get(config, key, default, str)
    if value not in mapping:
        raise ConfigError(f"diffusers {key}={value!r} is not supported; expected one of {sorted(mapping)}")
    return mapping[value]


def load_diffusers_scheduler(
    config_or_path: Mapping[str, Any] | str | os.PathLike[str],
) -> tuple[NoiseSchedule, DiffusionSampler]:
    """``(schedule, sampler)`` from a diffusers scheduler config: a dict, a JSON file, or a folder.

    A folder is read at ``scheduler_config.json``, or ``scheduler/scheduler_config.json``
    for a pipeline folder.
    """
    from thermogen.schedules.from_diffusers import schedule_from_diffusers_config

    config = config_or_path if isinstance(config_or_path, Mapping) else _read_config(Path(config_or_path))
    return schedule_from_diffusers_config(config), sampler_from_diffusers_config(config)


def _read_config(path: Path) -> dict[str, Any]:
    if path.is_dir():
        candidates = [path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"{path} has no scheduler_config.json (nor scheduler/scheduler_config.json)")
        path = found
    if not path.is_file():
        raise ConfigError(f"diffusers scheduler config not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}; expected a JSON object")
    return data
