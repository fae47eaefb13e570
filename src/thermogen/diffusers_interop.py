"""diffusers interop: read a diffusers ``scheduler_config.json`` into thermogen parts.

A diffusers scheduler is three things in one object: the training noise
schedule (:func:`schedule_from_diffusers_config`), a sampler
(:func:`sampler_from_diffusers_config`) and the model's parameterisation
(``prediction_type``, which in thermogen belongs to the model:
:func:`prediction_type_from_diffusers_config`). :func:`load_diffusers_scheduler`
reads all three from a dict, a file or a folder.

## The schedule
Only the *training* schedule is mapped here (which betas over how many steps):

| diffusers key | thermogen |
| --- | --- |
| ``beta_schedule="linear"`` | :class:`~thermogen.schedules.LinearSchedule` |
| ``beta_schedule="scaled_linear"`` | :class:`~thermogen.schedules.ScaledLinearSchedule` |
| ``beta_schedule="squaredcos_cap_v2"`` | :class:`~thermogen.schedules.ImprovedCosineSchedule` |
| ``beta_start``, ``beta_end`` | same names (ignored by ``squaredcos_cap_v2``, as in diffusers) |
| ``num_train_timesteps`` | same name |
| ``rescale_betas_zero_snr`` | same name |

Missing keys take diffusers' defaults (linear, 1e-4, 0.02, 1000, False).
Sampling keys (``timestep_spacing``, ``steps_offset``, ``set_alpha_to_one``,
``prediction_type``, ``eta``, ``clip_sample``, Karras sigmas, ...) belong to the
sampler and are ignored here; they are mapped below.

## The sampler
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
| ``prediction_type`` | the model's ``prediction_type``: ``"v_prediction"`` -> ``"v"`` |
| ``clip_sample``, ``clip_sample_range`` | ``clip_sample`` = the range, or None |
| ``thresholding``, ``dynamic_thresholding_ratio``, ``sample_max_value`` | ``dynamic_threshold``, ``sample_max_value`` |
| ``variance_type`` (DDPM) | ``"fixed_small(_log)"`` -> ``"fixed_small"``, ``"fixed_large(_log)"`` -> ``fixed_large`` |
| ``algorithm_type`` (DPM-Solver) | only ``"dpmsolver++"`` |
| ``solver_order``, ``lower_order_final`` (DPM-Solver) | the class, ``lower_order_final`` |

Differences kept on purpose: diffusers' DDIM ``step`` goes back ``T // n``
steps whatever the spacing, which is the next grid time only for ``leading``
and for ``trailing`` when n divides T (issue #11347); here each step goes to the
next grid time. diffusers' ``UniPCMultistepScheduler`` (``predict_x0=True``,
``solver_type`` = thermogen's ``variant``, ``lower_order_final``,
``disable_corrector``) has no config mapping here yet; its ``bh1`` returns NaN on
the step to sigma = 0, where thermogen's is first order.
``DPMSolverMultistepScheduler`` and Euler place ``linspace`` and
``leading`` grids slightly differently from DDIM (n + 1 points, last dropped;
fractional timesteps); thermogen uses one definition per spacing name
(:mod:`thermogen.samplers.diffusion.spacing`), so those grids differ by up to a few
training steps. Unsupported values (learned variances, other DPM algorithms,
exponential/beta sigmas) raise :class:`~thermogen.errors.ConfigError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from thermogen.config_files import read_json_file
from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule
from thermogen.parameterisation import PredictionType
from thermogen.samplers.diffusion.base import DiffusionSampler
from thermogen.samplers.diffusion.ddim import DDIMSampler
from thermogen.samplers.diffusion.ddpm import DDPMSampler, VarianceType
from thermogen.samplers.diffusion.dpm_solver import DPMSolverPP2M, DPMSolverPP3M
from thermogen.samplers.diffusion.euler import EulerSampler
from thermogen.samplers.diffusion.heun import HeunSampler
from thermogen.samplers.diffusion.spacing import FinalTime
from thermogen.schedules.improved_cosine import ImprovedCosineSchedule
from thermogen.schedules.linear import LinearSchedule, ScaledLinearSchedule

SUPPORTED_BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")

# diffusers scheduler families whose noise process is not beta-based (flow matching,
# EDM / variance exploding sigmas): their configs must not fall back to "linear".
_NOT_BETA_BASED = ("FlowMatch", "EDM", "ScoreSdeVe", "KarrasVe", "CMStochastic", "Consistency")


def schedule_from_diffusers_config(config: Mapping[str, Any]) -> NoiseSchedule:
    """Map a diffusers scheduler config (a parsed ``scheduler_config.json``) to a thermogen schedule.

    Schedule keys only; see the module docstring for the table and for what is
    ignored. Values are checked: a wrong type, an unsupported ``beta_schedule``,
    explicit ``trained_betas`` or a non-beta-based scheduler (flow matching,
    EDM) raise :class:`~thermogen.errors.ConfigError` naming the value.

    Example::

        >>> schedule_from_diffusers_config({"beta_schedule": "scaled_linear", "beta_start": 0.00085,
        ...                                 "beta_end": 0.012, "num_train_timesteps": 1000})
        ScaledLinearSchedule(beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, rescale_betas_zero_snr=False)
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"diffusers scheduler config is a {type(config).__name__}; expected a dict")
    class_name = config.get("_class_name")
    if isinstance(class_name, str) and any(part in class_name for part in _NOT_BETA_BASED):
        raise ConfigError(
            f"diffusers scheduler {class_name!r} does not use a beta schedule; "
            f"thermogen maps only beta schedules {list(SUPPORTED_BETA_SCHEDULES)}"
        )
    if config.get("use_flow_sigmas"):
        raise ConfigError("diffusers config has use_flow_sigmas=true (flow matching); expected a beta schedule")
    trained_betas = config.get("trained_betas")
    if trained_betas is not None:
        raise ConfigError(
            f"diffusers config has explicit trained_betas (a {type(trained_betas).__name__}); thermogen has no "
            f"registered schedule for explicit betas, expected trained_betas=null and a beta_schedule in "
            f"{list(SUPPORTED_BETA_SCHEDULES)}"
        )

    beta_schedule = config.get("beta_schedule", "linear")
    if beta_schedule not in SUPPORTED_BETA_SCHEDULES:
        raise ConfigError(
            f"diffusers beta_schedule={beta_schedule!r} is not supported; "
            f"expected one of {list(SUPPORTED_BETA_SCHEDULES)}"
        )
    steps = _integer(config, "num_train_timesteps", 1000)
    rescale = config.get("rescale_betas_zero_snr", False)
    if not isinstance(rescale, bool):
        raise ConfigError(f"diffusers config key 'rescale_betas_zero_snr' is {rescale!r}; expected true or false")

    try:
        if beta_schedule == "squaredcos_cap_v2":
            return ImprovedCosineSchedule(num_train_timesteps=steps, rescale_betas_zero_snr=rescale)
        beta_start = _number(config, "beta_start", 1e-4)
        beta_end = _number(config, "beta_end", 0.02)
        cls = LinearSchedule if beta_schedule == "linear" else ScaledLinearSchedule
        return cls(beta_start=beta_start, beta_end=beta_end, num_train_timesteps=steps, rescale_betas_zero_snr=rescale)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"diffusers config gives an invalid {beta_schedule} schedule: {exc}") from exc


def _number(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"diffusers config key {key!r} is {value!r}; expected a number")
    return float(value)


def _integer(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"diffusers config key {key!r} is {value!r}; expected an integer")
    return value


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
    return {"spacing": spacing, "steps_offset": steps_offset}


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


def prediction_type_from_diffusers_config(config: Mapping[str, Any]) -> PredictionType:
    """The model's ``prediction_type`` a diffusers scheduler config declares (``"v_prediction"`` -> ``"v"``)."""
    return cast(PredictionType, _choice(config, "prediction_type", "epsilon", _PREDICTION_TYPES))


@dataclass(frozen=True)
class DiffusersScheduler:
    """What a diffusers scheduler config holds, in thermogen's parts.

    Attributes:
        schedule: the training noise schedule.
        sampler: the sampler (configuration only).
        prediction_type: what the model outputs; set it on the model (``model.set_prediction_type``).

    Example::

        parts = load_diffusers_scheduler("path/to/diffusers-pipeline")
        model.set_prediction_type(parts.prediction_type)
    """

    schedule: NoiseSchedule
    sampler: DiffusionSampler
    prediction_type: PredictionType


def load_diffusers_scheduler(config_or_path: Mapping[str, Any] | str | os.PathLike[str]) -> DiffusersScheduler:
    """Schedule, sampler and prediction type from a diffusers scheduler config: a dict, a JSON file, or a folder.

    A folder is read at ``scheduler_config.json``, or ``scheduler/scheduler_config.json``
    for a pipeline folder.
    """
    config = config_or_path if isinstance(config_or_path, Mapping) else _read_config(Path(config_or_path))
    return DiffusersScheduler(
        schedule_from_diffusers_config(config),
        sampler_from_diffusers_config(config),
        prediction_type_from_diffusers_config(config),
    )


def _read_config(path: Path) -> dict[str, Any]:
    if path.is_dir():
        candidates = [path / "scheduler_config.json", path / "scheduler" / "scheduler_config.json"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"{path} has no scheduler_config.json (nor scheduler/scheduler_config.json)")
        path = found
    if not path.is_file():
        raise ConfigError(f"diffusers scheduler config not found: {path}")
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}; expected a JSON object")
    return data
