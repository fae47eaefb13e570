"""Tensor state on disk: safetensors only, strict checks, clear errors.

Nothing here unpickles. Nested training state (optimizer state, RNG states,
step counters) is split into a flat ``{name: tensor}`` dict for safetensors and
a JSON-able skeleton; :func:`flatten_state` / :func:`unflatten_state` are exact
inverses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from thermogen.atomic import atomic_file
from thermogen.errors import CheckpointError

WEIGHTS_NAME = "model.safetensors"


def save_tensors(tensors: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Write tensors to a safetensors file atomically (contiguous CPU copies)."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_file(path) as tmp:
        save_file(flat, str(tmp))


def load_tensors(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, truncated or corrupted file raises CheckpointError."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"weights file not found: {file}")
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        size = file.stat().st_size
        raise CheckpointError(
            f"cannot read {file} ({size} bytes) as safetensors: {exc}; "
            "the file is truncated or corrupted, save it again"
        ) from exc


def check_state_dict(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise CheckpointError listing missing, unexpected, shape- or dtype-mismatched and non-finite tensors.

    A floating-point tensor stored as int8 or bool (or the reverse) is refused,
    not cast; float32 <-> float16 and other float-to-float differences are fine.
    """
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(
        f"{k}: file {tuple(found[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(expected) & set(found)
        if found[k].shape != expected[k].shape
    )
    kinds = sorted(
        f"{k}: file {found[k].dtype} vs model {expected[k].dtype}"
        for k in set(expected) & set(found)
        if _kind(found[k].dtype) != _kind(expected[k].dtype)
    )
    non_finite = sorted(
        k
        for k in set(expected) & set(found)
        if found[k].is_floating_point() and not bool(torch.isfinite(found[k]).all())
    )
    problems = []
    if kinds:
        problems.append(f"wrong dtypes (floating-point, integer and boolean are not converted): {'; '.join(kinds)}")
    if non_finite:
        problems.append(f"tensors with NaN or infinite values: {', '.join(non_finite)}")
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {'; '.join(mismatched)}")
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + " | ".join(problems))


def _kind(dtype: torch.dtype) -> str:
    if dtype == torch.bool:
        return "bool"
    return "float" if dtype.is_floating_point else "complex" if dtype.is_complex else "int"


def load_module_state(module: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a safetensors file into ``module`` with strict key and shape checks."""
    found = load_tensors(path)
    check_state_dict(module.state_dict(), found, str(path))
    module.load_state_dict(found, strict=True)


# ----------------------------------------------------------------------------
# Nested state <-> (flat tensors, JSON skeleton)

_TENSOR_REF = "__tensor__"


def flatten_state(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split nested dicts/lists of tensors and plain values into tensors + JSON skeleton.

    Every tensor is replaced by ``{"__tensor__": "<key>"}``; dict keys become
    strings (integer keys, as in optimizer state, are restored by
    :func:`unflatten_state`).
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            tensors[path] = obj
            return {_TENSOR_REF: path}
        if isinstance(obj, Mapping):
            return {"__dict__": [[_encode_key(k), walk(v, f"{path}.{k}" if path else str(k))] for k, v in obj.items()]}
        if isinstance(obj, (list, tuple)):
            items = [walk(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(obj)]
            return {"__tuple__": items} if isinstance(obj, tuple) else items
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        raise TypeError(f"cannot store {type(obj).__name__} at {path!r} in a checkpoint")

    skeleton = walk(state, prefix)
    return tensors, skeleton


MAX_STATE_DEPTH = 64
"""Nesting deeper than this in a state skeleton is refused (optimizer states nest about 6 deep)."""


def unflatten_state(tensors: Mapping[str, torch.Tensor], skeleton: Any) -> Any:
    """Inverse of :func:`flatten_state`.

    Raises:
        CheckpointError: the skeleton is not one :func:`flatten_state` writes (a
            malformed node, nesting deeper than :data:`MAX_STATE_DEPTH`, a
            reference to a tensor that is not there); the message names the field.
    """

    def walk(obj: Any, path: str, depth: int) -> Any:
        where = path or "<top>"
        if depth > MAX_STATE_DEPTH:
            raise CheckpointError(f"field {where!r} nests deeper than {MAX_STATE_DEPTH} levels")
        if isinstance(obj, dict):
            if set(obj) == {_TENSOR_REF}:
                key = obj[_TENSOR_REF]
                if not isinstance(key, str) or key not in tensors:
                    raise CheckpointError(f"field {where!r} refers to tensor {key!r}, which is not in the file")
                return tensors[key]
            if set(obj) == {"__tuple__"} and isinstance(obj["__tuple__"], list):
                return tuple(walk(v, f"{path}.{i}".lstrip("."), depth + 1) for i, v in enumerate(obj["__tuple__"]))
            if set(obj) == {"__dict__"} and isinstance(obj["__dict__"], list):
                result = {}
                for pair in obj["__dict__"]:
                    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (bool, int, str))):
                        raise CheckpointError(f"field {where!r} has an entry {_short(pair)}; expected [key, value]")
                    result[pair[0]] = walk(pair[1], f"{path}.{pair[0]}".lstrip("."), depth + 1)
                return result
            raise CheckpointError(
                f"field {where!r} is {_short(obj)}; expected a tensor reference, a tuple or a dict as saved"
            )
        if isinstance(obj, list):
            return [walk(v, f"{path}.{i}".lstrip("."), depth + 1) for i, v in enumerate(obj)]
        return obj

    return walk(skeleton, "", 0)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _encode_key(key: Any) -> Any:
    if isinstance(key, (bool, int, str)):
        return key
    raise TypeError(f"cannot store dict key {key!r} of type {type(key).__name__} in a checkpoint")
