"""A component on disk: ``config.json`` (and ``model.safetensors``) in a folder, a bundled name or a Hub repo.

:mod:`thermogen.config` records and validates configs; this module writes a
component's folder and reads it back. Its JSON reader, :func:`read_json_file`, is
the one every JSON file thermogen loads goes through (component configs,
``model_index.json``, trainer states): it refuses a file above
:data:`~thermogen.checks.MAX_JSON_BYTES` or nested deeper than
:data:`~thermogen.checks.MAX_JSON_DEPTH` before parsing it, and names the file in
every error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from thermogen.atomic import write_json
from thermogen.checks import MAX_JSON_BYTES, check_json_text, format_bytes
from thermogen.errors import CheckpointError, ConfigError
from thermogen.hub import HubOptions, resolve_directory
from thermogen.weights import WEIGHTS_NAME, load_tensors, save_tensors

if TYPE_CHECKING:
    from thermogen.config import Configurable

CONFIG_NAME = "config.json"

C = TypeVar("C", bound="Configurable")


def read_json_file(path: str | os.PathLike[str], error: type[Exception] = ConfigError) -> Any:
    """The JSON value in ``path``; a missing, oversized, too deeply nested or malformed file raises ``error``."""
    file = Path(path)
    if not file.is_file():
        raise error(f"file not found: {file}")
    size = file.stat().st_size
    if size > MAX_JSON_BYTES:
        raise error(f"{file} is {format_bytes(size)}; a JSON file may be at most {format_bytes(MAX_JSON_BYTES)}")
    try:
        text = file.read_text(encoding="utf-8")
        check_json_text(text, str(file), error)
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{file} is not valid JSON: {exc}") from None


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON config file (an object); anything else raises ConfigError naming the file."""
    data = read_json_file(path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}; expected a JSON object")
    return data


def write_component(component: Configurable, directory: Path) -> None:
    """Write ``config.json`` and, for a component with tensor state, ``model.safetensors`` into ``directory``."""
    write_json(directory / CONFIG_NAME, component.to_config())
    tensors = component.state_tensors()
    if tensors:
        save_tensors(tensors, directory / WEIGHTS_NAME)


def read_component(cls: type[C], directory: Path, config: Mapping[str, Any] | None = None, **overrides: Any) -> C:
    """Build ``cls`` from ``directory/config.json`` (or ``config``, read from it by the caller) with ``overrides``,
    and load ``model.safetensors`` if stateful.

    A loaded ``nn.Module`` is put in eval mode (call ``.train()`` to fine-tune).
    """
    component = cls.from_config(read_config(directory / CONFIG_NAME) if config is None else config, **overrides)
    weights = directory / WEIGHTS_NAME
    if weights.is_file():
        component.load_state_tensors(load_tensors(weights), source=str(weights))
    elif component.state_tensors():
        raise CheckpointError(f"{directory} has no {WEIGHTS_NAME}, but {type(component).__name__} has weights")
    if isinstance(component, torch.nn.Module):
        component.eval()
    return component


def load_pretrained(cls: type[C], name_or_path: str | os.PathLike[str], **keywords: Any) -> C:
    """``cls.read_from`` the folder ``name_or_path`` names; ``keywords`` are :class:`HubOptions`, then overrides.

    The load sees one complete version of the folder or fails clearly, and
    refuses symbolic links that point out of it (see :mod:`thermogen.loading`).
    """
    from thermogen.loading import prepare_local, read_consistently

    options = HubOptions.take_from(keywords)
    prepare_local(name_or_path)
    directory = resolve_directory(name_or_path, options)
    return read_consistently(directory, lambda folder: cls.read_from(folder, **keywords))
