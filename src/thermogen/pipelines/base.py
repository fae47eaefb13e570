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

import inspect
import os
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from thermogen import registry
from thermogen.atomic import write_json
from thermogen.checks import check_allocation, check_device, check_positive_int
from thermogen.config import RESERVED_KEYS, Configurable, as_saved, check_override_names, validate_arguments
from thermogen.config_files import CONFIG_NAME, read_config
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

    Example::

        pipe = DiffusionPipeline.from_pretrained("thermogen/ddim-mnist", sampler="dpmpp_2m")   # swap a component
        pipe.components                                      # {"model": DDPMUNet, ..., "sampler": DPMSolverPP2M, ...}
        pipe.save_pretrained("my-pipeline")                  # model_index.json, README.md, one folder per component
        Pipeline.from_pretrained("my-pipeline")              # the registered class model_index.json names
    """

    registry_kind: ClassVar[str] = "pipelines"
    component_kinds: ClassVar[dict[str, str]] = {}
    call_keywords: ClassVar[tuple[str, ...]] = ()
    """Keywords of ``__call__``; passed to ``from_pretrained`` by mistake, they get a hint."""
    _model_card: str | None = None
    _card_components: dict[str, Any] | None = None

    @property
    def model_card(self) -> str | None:
        """The model card (README.md). One read with the pipeline is written back only while the components
        are the ones it describes; one set by code is always written."""
        return self._model_card

    @model_card.setter
    def model_card(self, text: str | None) -> None:
        self._model_card = text
        self._card_components = None  # set by code: it describes the components as they are now

    def check_components(self, **components: Any) -> None:
        """Raise TypeError unless each component is an instance of the class the constructor's hint names.

        Catches ``DiffusionPipeline(..., sampler=SGLDSampler())`` or ``sampler="ddim"``
        at construction instead of deep inside a call.
        """
        hints = typing.get_type_hints(type(self).__init__)
        for name, value in components.items():
            expected = tuple(
                a for a in typing.get_args(hints[name]) or (hints[name],) if isinstance(a, type) and a is not type(None)
            )
            if value is None and type(None) in typing.get_args(hints[name]):
                continue
            if not isinstance(value, expected):
                hint = ""
                if isinstance(value, (str, Mapping)):
                    hint = (
                        f"; to pick a registered {self.component_kinds[name][:-1]} by name or config, use "
                        f"{type(self).__name__}.from_pretrained(..., {name}={value!r}) or "
                        f"thermogen.registry.get({self.component_kinds[name]!r}, name)()"
                    )
                names = " or ".join(e.__name__ for e in expected)
                raise TypeError(f"{type(self).__name__}: {name} is {_describe(value)}; expected a {names}{hint}")

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
        (directory / MODEL_CARD).write_text(self.current_model_card(), encoding="utf-8")

    def current_model_card(self) -> str:
        """The card to save: the one read with the pipeline while its components are unchanged,
        else a card generated from the actual components (a sampler swap shows the new sampler)."""
        config = self.to_config()
        if self.model_card is not None and self._card_components in (None, self._component_configs()):
            return self.model_card
        return model_card(config["_class_name"], {k: config[k] for k in self.component_kinds})

    def _component_configs(self) -> dict[str, Any]:
        return {k: None if v is None else v.to_config() for k, v in self.components.items()}

    @classmethod
    def upgrade_saved(
        cls, index: dict[str, Any], configs: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Bring what an older thermogen saved to the current format (default: as it is).

        ``index`` is ``model_index.json``; ``configs`` maps component names to the configs read
        from their folders. A subclass moves or renames keys here (returning new dicts), so
        that old folders and Hub repos keep loading; a save writes the current format.
        """
        return index, configs

    @classmethod
    def read_from(cls: type[P], directory: Path, **overrides: Any) -> P:
        """Build from ``model_index.json`` and the component folders.

        ``overrides`` may replace a component by a registered name (``sampler="dpmpp_2m"``), by a
        config, or by an object, and may override plain config values. A sampler given by name or
        config keeps the options it shares with the saved one (a warning names those it drops).
        """
        index = read_config(directory / MODEL_INDEX)
        name = index.get("_class_name")
        if not isinstance(name, str):
            raise ConfigError(f"{directory / MODEL_INDEX} has no '_class_name'")
        target: type[P] = registry.get("pipelines", name)
        if not issubclass(target, cls):
            raise ConfigError(f"{directory} holds a {target.__name__} ({name!r}), not a {cls.__name__}")
        index, saved = target.upgrade_saved(
            index,
            {
                name: read_config(directory / name / CONFIG_NAME)
                for name in target.component_kinds
                if index.get(name) is not None
            },
        )
        components: dict[str, Any] = {}
        for name, kind in target.component_kinds.items():
            if name in overrides:
                components[name] = _component_from_override(kind, name, overrides.pop(name), saved.get(name))
            elif name in saved:
                components[name] = _read_component(kind, directory / name, saved[name])
            else:
                components[name] = None
        _check_plain_overrides(target, overrides)
        plain = {k: v for k, v in index.items() if k not in target.component_kinds}
        kwargs = validate_arguments(target, {**plain, **{k: v for k, v in overrides.items()}, **components})
        pipeline = target(**kwargs)
        card = directory / MODEL_CARD
        if card.is_file():
            pipeline.model_card = card.read_text(encoding="utf-8")
            changed = overrides_components(components, index)
            pipeline._card_components = {"changed at load": True} if changed else pipeline._component_configs()
        return pipeline

    @classmethod
    def from_pretrained(
        cls: type[P],
        name_or_path: str | os.PathLike[str],
        torch_dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        **keywords: Any,
    ) -> P:
        """Load a pipeline saved with ``save_pretrained``: a folder, a bundled name or a Hub repo.

        Args:
            name_or_path: a local folder, a bundled short name (``"thermogen/ddim-mnist"``, see
                ``thermogen list``) or a Hub repo id (``"org/name"``; ``HF_ENDPOINT`` picks another Hub,
                ``HF_HUB_OFFLINE=1`` uses the cache only).
            torch_dtype: cast floating-point weights, e.g. ``torch.float16`` or ``torch.bfloat16``
                (default: float32, whatever dtype the weights were saved in); samples are then drawn in
                this dtype.
            device: move the pipeline there, e.g. ``"cuda"`` (default: CPU).
            **keywords: where to look (the fields of :class:`~thermogen.hub.HubOptions`: ``subfolder``,
                ``revision``, ``local_files_only``, ``cache_dir``, ``token``), then overrides that replace
                a component or a setting. A component (DiffusionPipeline:
                ``model``, ``schedule``, ``sampler``, ``normalizer``; EBMPipeline: ``energy_model``,
                ``sampler``, ``buffer``) by a registered name built with its defaults
                (``sampler="dpmpp_2m"``), by a config with ``_class_name``
                (``sampler={"_class_name": "ddim", "eta": 0.5}``) or by an object
                (``schedule=CosineSchedule()``); a plain setting by value (``num_inference_steps=200``).

        Raises:
            PretrainedNotFoundError: no such folder, bundled name, repo or revision, or offline and not cached.
            ConfigError: a config or override that does not fit.
            CheckpointError: a weights file that is missing, corrupted or does not fit the model.
        """
        if "variant" in keywords:
            raise ConfigError(
                f"variant={keywords['variant']!r} is not supported: thermogen stores one weights file "
                "per component (float32, or float16 if saved after .to(torch.float16)); "
                "pass torch_dtype=torch.float16 to load it in half precision"
            )
        pipeline = super().from_pretrained(name_or_path, **keywords)
        if torch_dtype is not None or device is not None:
            pipeline.to(device, torch_dtype)
        return pipeline

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Generate; each pipeline documents its keywords (``batch_size``, ``generator``, ``output_type``, ...)."""
        raise NotImplementedError

    def to(self: P, device: torch.device | str | torch.dtype | None = None, dtype: torch.dtype | None = None) -> P:
        """Move every module (and tensor-holding component) to ``device`` / ``dtype``; returns self.

        Like ``nn.Module.to``: ``pipe.to("cuda")``, ``pipe.to(torch.float16)``, ``pipe.to("cuda", torch.float16)``.
        Replay buffers keep float32 storage.
        """
        if isinstance(device, torch.dtype):
            if dtype is not None:
                raise TypeError(f"to({device}, {dtype}): two dtypes given; expected to(device, dtype)")
            device, dtype = None, device
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise TypeError(f"dtype={dtype!r}; expected a floating-point torch.dtype such as torch.float16")
        if device is not None:
            device = check_device(device)
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


class PipelineOutput:
    """Indexing as diffusers' outputs: ``out[0]`` (the images), ``out["images"]``, ``out.to_tuple()``.

    Subclasses are frozen dataclasses whose first field is ``images``; as in diffusers,
    integer indices count only the fields that are not None.

    Example::

        out = pipe(batch_size=4, output_type="pt")           # a DiffusionPipelineOutput
        out[0] is out.images, out["images"] is out.images    # True, True
        (images,) = out.to_tuple()                           # the fields that are not None (trajectory is None)
    """

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are not None, in order (what ``return_dict=False`` returns)."""
        return tuple(value for value in vars(self).values() if value is not None)

    def __getitem__(self, key: int | slice | str) -> Any:
        if isinstance(key, str):
            if vars(self).get(key) is None:
                present = [k for k, v in vars(self).items() if v is not None]
                raise KeyError(f"{key!r}; this output has {present}")
            return vars(self)[key]
        return self.to_tuple()[key]


def overrides_components(components: Mapping[str, Any], index: Mapping[str, Any]) -> bool:
    """Whether any loaded component differs in kind from what ``model_index.json`` names."""
    return any(
        (value is None) != (index.get(name) is None)
        or (value is not None and registry.name_of(kind_of(value), type(value)) != index.get(name))
        for name, value in components.items()
    )


def kind_of(component: Any) -> str:
    return str(component.registry_kind)


def draw_noise(
    shape: Sequence[int],
    generator: torch.Generator | Sequence[torch.Generator] | None,
    device: torch.device,
    dtype: torch.dtype,
    uniform: bool = False,
) -> torch.Tensor:
    """Initial noise (B, *shape[1:]): standard normal (or U(0, 1)); size checked before allocating.

    With a list of B generators (diffusers' convention) row i comes from generator i alone.
    """
    batch = check_positive_int("batch_size", shape[0])
    check_allocation("initial noise", shape, dtype)
    draw = torch.rand if uniform else torch.randn
    if isinstance(generator, (list, tuple)):
        if len(generator) != batch:
            raise ValueError(f"{len(generator)} generators for batch_size={batch}; expected one per sample")
        rows = [draw(tuple(shape[1:]), generator=g, device=g.device, dtype=dtype) for g in generator]
        return torch.stack(rows).to(device)
    return draw(tuple(shape), generator=generator, device=device, dtype=dtype)  # type: ignore[arg-type]


def reject_renamed_keywords(
    pipeline: type,
    given: Mapping[str, Any],
    renamed: Mapping[str, str],
    not_here: Mapping[str, str] | None = None,
) -> None:
    """Refuse keywords a pipeline call does not take (``given``, its ``**kwargs``), helpfully.

    A renamed keyword gets a TypeError naming the new one; a keyword in ``not_here`` (one that
    other pipelines take, e.g. ``eta``) a ValueError saying what it is; any other a TypeError.
    """
    for key, value in given.items():
        if key in renamed:
            new = renamed[key]
            raise TypeError(f"{pipeline.__name__}() got {key}={value!r:.40}; the keyword is now {new}: pass {new}=...")
        if not_here and key in not_here:
            raise ValueError(f"{key}={value!r:.40} is {not_here[key]}; {pipeline.__name__} does not take it")
        raise TypeError(f"{pipeline.__name__}() got an unexpected keyword argument {key!r}")


def _describe(value: Any) -> str:
    if isinstance(value, (str, Mapping)):
        return f"{value!r} (a {type(value).__name__})"
    return f"a {type(value).__name__}"


def _read_component(kind: str, directory: Path, config: dict[str, Any]) -> Any:
    name = config.get("_class_name")
    if not isinstance(name, str):
        raise ConfigError(f"{directory / CONFIG_NAME} has no '_class_name'")
    cls = registry.get(kind, name)
    return cls.read_with_config(directory, config)


def _component_from_override(kind: str, name: str, value: Any, saved: Mapping[str, Any] | None) -> Any:
    """A component given to ``from_pretrained`` by registered name, by config or as an object.

    A sampler given by name or config keeps the options it shares with the saved sampler
    (``saved``: its config), under the given config's values; the options it has no
    use for are named in a warning.
    """
    if isinstance(value, str):
        value = {"_class_name": value}
    if not isinstance(value, Mapping):
        return value
    if not isinstance(value.get("_class_name"), str):
        raise ConfigError(
            f"{name}={dict(value)!r} has no '_class_name'; a {name} config names a registered "
            f"{kind[:-1]}, e.g. {{'_class_name': 'ddim', **{dict(value)!r}}} "
            f"(registered: {', '.join(registry.names(kind))})"
        )
    cls = registry.get(kind, value["_class_name"])
    given = {k: v for k, v in value.items() if k != "_class_name"}
    config: dict[str, Any] = {"_class_name": value["_class_name"]}
    if kind == "samplers" and saved is not None:
        swap = f"{name} {saved.get('_class_name')!r} -> {value['_class_name']!r}"
        config.update({k: v for k, v in carried_options(cls, saved, swap).items() if k not in given})
    return cls.from_config(config, **given)  # the given keys are checked strictly: a wrong one raises


def carried_options(cls: type, saved: Mapping[str, Any], swap: str) -> dict[str, Any]:
    """The options of ``saved`` (a sampler config) that ``cls``'s constructor takes.

    A warning names the others, where they are set to something other than their default
    (a dropped ``eta=0.0`` loses nothing; a dropped ``eta=0.5`` changes the sampling).
    """
    accepted = set(inspect.signature(cls).parameters)
    options = {k: v for k, v in saved.items() if k not in RESERVED_KEYS}
    defaults = _defaults(registry.get("samplers", saved["_class_name"])) if "_class_name" in saved else {}
    dropped = sorted(k for k in options if k not in accepted and options[k] != defaults.get(k))
    if dropped:
        warnings.warn(
            f"{swap}: kept {sorted(k for k in options if k in accepted)}; dropped "
            + ", ".join(f"{k}={options[k]!r}" for k in dropped)
            + f" ({cls.__name__} has no such options)",
            UserWarning,
            stacklevel=4,
        )
    return {k: v for k, v in options.items() if k in accepted}


def _defaults(cls: type) -> dict[str, Any]:
    """The constructor defaults of ``cls`` in saved form (a default ``()`` as the ``[]`` a saved config holds)."""
    return {
        name: as_saved(param.default, f"{cls.__name__} default {name!r}")
        for name, param in inspect.signature(cls).parameters.items()
        if param.default is not inspect.Parameter.empty
    }


def _check_plain_overrides(target: type[Pipeline], overrides: Mapping[str, Any]) -> None:
    """A keyword of ``from_pretrained`` that is neither a component nor a setting of ``target`` raises.

    A keyword of the call (``eta``, ``num_inference_steps``, ...) gets a hint: it goes to ``pipe(...)``.
    """
    for key in sorted(set(overrides) & set(target.call_keywords)):
        hint = ""
        if key == "eta":
            hint = f", or into a sampler config: sampler={{'_class_name': 'ddim', 'eta': {overrides[key]!r}}}"
        raise ConfigError(
            f"{key}={overrides[key]!r} is a keyword of {target.__name__}'s call, not a setting to load with; "
            f"pass it to the call: pipe({key}={overrides[key]!r}){hint}"
        )
    check_override_names(target, overrides)
