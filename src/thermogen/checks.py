"""Shared input checks: each raises an error naming the bad value and what was expected.

Used where values enter the library (constructors, configs, weights files,
pipeline calls) so that a NaN, a wrong dtype or an absurd size fails at once
with a clear message instead of giving black images or reaching the allocator.

The scalar checks of constructor arguments (:func:`check_positive_int`,
:func:`check_int`, :func:`check_number`, :func:`check_choice`, :func:`check_bool`,
:func:`check_positive_ints`) raise :class:`~thermogen.errors.ConfigError`, the one
error type for bad configuration, and return the value in its plain Python type.

On an accelerator, :func:`check_finite` and :func:`check_in_range` would need a
host-device synchronisation; they check CPU tensors eagerly and queue an
asynchronous device-side assertion for others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from thermogen.errors import ConfigError

MAX_TENSOR_BYTES = 16 * 2**30
"""The largest single tensor (16 GiB) that a constructor or pipeline call may allocate."""

MAX_JSON_BYTES = 8 * 2**20
"""The largest JSON file read: configs, ``model_index.json``, trainer states (8 MiB)."""

MAX_JSON_DEPTH = 32
"""The deepest nesting of lists and objects accepted in a JSON file."""


def check_finite(name: str, tensor: Tensor, error: type[Exception] = ValueError) -> Tensor:
    """Raise ``error`` if ``tensor`` holds NaN or ±inf; returns ``tensor``."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return tensor
    if tensor.device.type != "cpu":
        torch._assert_async(torch.isfinite(tensor).all(), f"{name} contains NaN or infinite values")
        return tensor
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        nan = int(torch.isnan(tensor).sum())
        raise error(
            f"{name} contains NaN or infinite values: {bad} of {tensor.numel()} ({nan} NaN, {bad - nan} infinite); "
            "expected finite numbers"
        )
    return tensor


def check_finite_number(name: str, value: Any, error: type[Exception] = ValueError) -> float:
    """A real, finite Python or NumPy number -> float; anything else raises ``error``."""
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not _is_numpy_number(value)):
        raise error(f"{name}={value!r} of type {type(value).__name__}; expected a finite number")
    number = float(value)
    if not math.isfinite(number):
        raise error(f"{name}={value!r}; expected a finite number")
    return number


def check_floating(name: str, tensor: Any, error: type[Exception] = TypeError) -> Tensor:
    """Require a real floating-point tensor (not int, bool, uint8 images or complex)."""
    if not isinstance(tensor, Tensor):
        raise error(f"{name} is a {type(tensor).__name__}; expected a torch.Tensor")
    if not tensor.is_floating_point():
        hint = " (uint8 images: divide by 255 to get floats in [0, 1])" if tensor.dtype == torch.uint8 else ""
        raise error(f"{name} has dtype {tensor.dtype}; expected a real floating-point tensor{hint}")
    return tensor


def check_in_range(name: str, tensor: Tensor, low: float, high: float) -> Tensor:
    """Raise ValueError unless every element lies in [low, high] (NaN fails)."""
    inside = (tensor >= low) & (tensor <= high)
    if tensor.device.type != "cpu":
        torch._assert_async(inside.all(), f"{name} has values outside [{low}, {high}]")
        return tensor
    if not bool(inside.all()):
        outside = tensor[~inside]
        raise ValueError(
            f"{name} has {outside.numel()} values outside [{low}, {high}] (e.g. {float(outside[0])!r}); "
            f"expected values in [{low}, {high}]"
        )
    return tensor


def check_positive_int(name: str, value: Any, error: type[Exception] = ConfigError) -> int:
    """A positive Python (or NumPy) integer; a float such as 3.0 or 1e12 is rejected, not truncated."""
    if isinstance(value, bool) or not (isinstance(value, int) or _is_numpy_integer(value)) or int(value) < 1:
        raise error(f"{name}={value!r} of type {type(value).__name__}; expected a positive integer")
    return int(value)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """A Python (or NumPy) integer in [low, high] (a bound of None: unbounded) -> int; else ConfigError.

    ``check_int("num_train_timesteps", 1, low=2)`` raises
    ``ConfigError: num_train_timesteps=1; expected an integer >= 2``. Booleans and
    floats (even 3.0) are refused.
    """
    expected = f"an integer{_interval(low, high, True, True)}"
    if isinstance(value, bool) or not (isinstance(value, int) or _is_numpy_integer(value)):
        raise ConfigError(f"{name}={value!r} of type {type(value).__name__}; expected {expected}")
    if (low is not None and int(value) < low) or (high is not None and int(value) > high):
        raise ConfigError(f"{name}={value!r}; expected {expected}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """A finite real Python (or NumPy) number between ``low`` and ``high`` -> float; else ConfigError.

    Each bound is inclusive unless told otherwise (None: unbounded):
    ``check_number("max_beta", 1.0, 0, 1, low_inclusive=False, high_inclusive=False)`` raises
    ``ConfigError: max_beta=1.0; expected a finite number in (0, 1)``. NaN, infinities
    and booleans are refused.
    """
    expected = f"a finite number{_interval(low, high, low_inclusive, high_inclusive)}"
    if isinstance(value, bool) or (not isinstance(value, (int, float)) and not _is_numpy_number(value)):
        raise ConfigError(f"{name}={value!r} of type {type(value).__name__}; expected {expected}")
    number = float(value)
    too_low = low is not None and (number < low if low_inclusive else number <= low)
    too_high = high is not None and (number > high if high_inclusive else number >= high)
    if not math.isfinite(number) or too_low or too_high:
        raise ConfigError(f"{name}={value!r}; expected {expected}")
    return number


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``; else ConfigError listing them."""
    if value not in choices or (isinstance(value, bool) and not any(c is value for c in choices)):  # True == 1
        raise ConfigError(f"{name}={value!r}; expected one of {', '.join(map(repr, choices))}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0, 1 or a string); else ConfigError."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} of type {type(value).__name__}; expected True or False")
    return value


def check_positive_ints(name: str, values: Any, min_length: int = 1, max_length: int | None = None) -> list[int]:
    """A sequence of ``min_length`` to ``max_length`` positive integers (channel widths, shapes) -> list.

    ``check_positive_ints("widths", [8, 0])`` raises
    ``ConfigError: widths=[8, 0]; expected one or more positive integers``.
    """
    count = f"{min_length} to {max_length}" if max_length is not None else f"{_at_least(min_length)}"
    expected = f"{count} positive integers"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name}={values!r} of type {type(values).__name__}; expected {expected}")
    shown = list(values)
    if not min_length <= len(shown) <= (max_length if max_length is not None else len(shown)):
        raise ConfigError(f"{name}={shown!r}; expected {expected}")
    for value in shown:
        if isinstance(value, bool) or not (isinstance(value, int) or _is_numpy_integer(value)) or int(value) < 1:
            raise ConfigError(f"{name}={shown!r}; expected {expected}")
    return [int(value) for value in shown]


def _interval(low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool) -> str:
    """' in [0, 1)', ' >= 2', ' < 1' or '' (no bounds)."""
    if low is not None and high is not None:
        return f" in {'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
    if low is not None:
        return f" {'>=' if low_inclusive else '>'} {low}"
    if high is not None:
        return f" {'<=' if high_inclusive else '<'} {high}"
    return ""


_SMALL_COUNTS = ("zero", "one", "two", "three", "four")


def _at_least(count: int) -> str:
    """'one or more', 'at least two', 'at least 7'."""
    if count == 1:
        return "one or more"
    return f"at least {_SMALL_COUNTS[count] if 0 <= count < len(_SMALL_COUNTS) else count}"


def check_allocation(
    name: str, shape: Sequence[int], dtype: torch.dtype = torch.float32, error: type[Exception] = ValueError
) -> None:
    """Refuse, before allocating, a tensor of ``shape`` larger than :data:`MAX_TENSOR_BYTES`."""
    size = math.prod(int(n) for n in shape) * _itemsize(dtype)
    if size > MAX_TENSOR_BYTES:
        raise error(
            f"{name} of shape {tuple(int(n) for n in shape)} ({dtype}) would allocate {format_bytes(size)}, "
            f"more than the {format_bytes(MAX_TENSOR_BYTES)} limit; use smaller sizes"
        )


def check_json_text(text: str, source: str, error: type[Exception] = ValueError) -> None:
    """Refuse JSON text larger than :data:`MAX_JSON_BYTES` or nested deeper than :data:`MAX_JSON_DEPTH`."""
    if len(text) > MAX_JSON_BYTES:
        raise error(f"{source} is {format_bytes(len(text))}; a JSON file may be at most {format_bytes(MAX_JSON_BYTES)}")
    depth = deepest = 0
    for bracket in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = bracket.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                raise error(f"{source} nests lists/objects deeper than {MAX_JSON_DEPTH} levels; refusing to parse it")
        elif token in "]}":
            depth -= 1


def format_bytes(size: int) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def _is_numpy_number(value: Any) -> bool:
    return (
        type(value).__module__ == "numpy"
        and getattr(value, "ndim", 1) == 0
        and getattr(getattr(value, "dtype", None), "kind", "") in "iuf"
    )


def _is_numpy_integer(value: Any) -> bool:
    return _is_numpy_number(value) and value.dtype.kind in "iu"


def check_device(device: torch.device | str) -> torch.device:
    """A ``torch.device`` that exists on this machine; 'cuda' without CUDA raises ValueError with the reason."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device; expected e.g. 'cpu', 'cuda', 'cuda:1' or 'mps'") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}, but CUDA is not available (torch {torch.__version__}); use 'cpu'")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}, but only {torch.cuda.device_count()} CUDA devices exist")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but MPS is not available on this machine; use 'cpu'")
    return resolved
