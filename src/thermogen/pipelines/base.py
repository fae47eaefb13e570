"""A pipeline is a set of named components saved as one directory (the Hub layout).

::

    model_index.json            {"_class_name": "diffusion", "_thermogen_version": "...",
                                 "model": "unet", "schedule": "offset_cosine", ...}
    <component>/config.json     {"_class_name": "<registered name>", ...constructor arguments...}
    <component>/model.safetensors   (only for components with tensor state)
    README.md                   model card

``save_pretrained`` writes it atomically, ``from_pretrained`` reads it from a
folder, a bundled short name or a Hub repo, and ``push_to_hub`` uploads exactly
what ``save_pretrained`` writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from thermogen import registry
from thermogen.atomic import write_json
from thermogen.config import Configurable, read_config, validate_arguments
from thermogen.errors import ConfigError
from thermogen.model_card import model_card

MODEL_INDEX = "model_index.json"
MODEL_CARD = "README.md"

P = TypeVar("P", bound="Pipeline")


class Pipeline(Configurable):
    """Base class: subclasses declare ``component_kinds`` (attribute name -> registry kind).

    Constructor arguments named in ``component_kinds`` are components; the
    other (JSON) arguments are stored in ``model_index.json`` beside the
    component names.
    """

    registry_kind: ClassVar[str] = "pipelines"
    component_kinds: ClassVar[dict[str, str]] = {}
    model_card: str | None = None

    @property
    def components(self) -> dict[str, Any]:
        """The components by attribute name (None for an absent optional component)."""
        return {name: getattr(self, name) for name in self.component_kinds}

    def to_config(self) -> dict[str, Any]:
        config = super().to_config()
        for name, kind in self.component_kinds.items():
            component = getattr(self, name)
            config[name] = None if component is None else registry.name_of(kind, type(component))
        return config

    def write_to(self, directory: Path) -> None:
        """Write model_index.json, every component's folder and the model card (README.md)."""
        config = self.to_config()
        write_json(directory / MODEL_INDEX, config)
        for name, component in self.components.items():
            if component is not None:
                (directory / name).mkdir()
                component.write_to(directory / name)
        card = self.model_card or model_card(config["_class_name"], {k: config[k] for k in self.component_kinds})
        (directory / MODEL_CARD).write_text(card, encoding="utf-8")

    @classmethod
    def read_from(cls: type[P], directory: Path, **overrides: Any) -> P:
        """Build from ``model_index.json`` and the component folders.

        ``overrides`` may replace a component by a registered name (``sampler="dpmpp_2m"``,
        built with its default config) or by an object, and may override plain config values.
        """
        index = read_config(directory / MODEL_INDEX)
        name = index.get("_class_name")
        if not isinstance(name, str):
            raise ConfigError(f"{directory / MODEL_INDEX} has no '_class_name'")
        target: type[P] = registry.get("pipelines", name)
        if not issubclass(target, cls):
            raise ConfigError(f"{directory} holds a {target.__name__} ({name!r}), not a {cls.__name__}")
        components: dict[str, Any] = {}
        for name, kind in target.component_kinds.items():
            if name in overrides:
                components[name] = _component_from_override(kind, name, overrides.pop(name))
            elif index.get(name) is not None:
                components[name] = _read_component(kind, directory / name)
            else:
                components[name] = None
        plain = {k: v for k, v in index.items() if k not in target.component_kinds}
        kwargs = validate_arguments(target, {**plain, **{k: v for k, v in overrides.items()}, **components})
        pipeline = target(**kwargs)
        card = directory / MODEL_CARD
        if card.is_file():
            pipeline.model_card = card.read_text(encoding="utf-8")
        return pipeline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Generate; each pipeline documents its keywords (``batch_size``, ``generator``, ``output_type``, ...)."""
        raise NotImplementedError

    def to(self: P, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> P:
        """Move every module (and tensor-holding component) to ``device`` / ``dtype``; returns self."""
        for component in self.components.values():
            if isinstance(component, torch.nn.Module):
                component.to(device=device, dtype=dtype)
            elif component is not None and hasattr(component, "to"):
                component.to(device)
        return self

    @property
    def device(self) -> torch.device:
        for component in self.components.values():
            if isinstance(component, torch.nn.Module):
                for parameter in component.parameters():
                    return parameter.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for component in self.components.values():
            if isinstance(component, torch.nn.Module):
                for parameter in component.parameters():
                    return parameter.dtype
        return torch.float32

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={type(v).__name__}" for k, v in self.components.items())
        return f"{type(self).__name__}({parts})"


def _read_component(kind: str, directory: Path) -> Any:
    config = read_config(directory / "config.json")
    name = config.get("_class_name")
    if not isinstance(name, str):
        raise ConfigError(f"{directory / 'config.json'} has no '_class_name'")
    cls = registry.get(kind, name)
    return cls.read_from(directory)


def _component_from_override(kind: str, name: str, value: Any) -> Any:
    if isinstance(value, str):
        return registry.get(kind, value)()
    if isinstance(value, Mapping):
        cls = registry.get(kind, str(value.get("_class_name")))
        return cls.from_config(value)
    return value
