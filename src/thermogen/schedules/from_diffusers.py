"""Read the noise schedule out of a diffusers ``scheduler_config.json``.

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
sampler and are ignored here; they are mapped with the samplers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thermogen.errors import ConfigError
from thermogen.interfaces import NoiseSchedule
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
