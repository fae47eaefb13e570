"""Every component is built from a JSON config of its constructor arguments.

A subclass of :class:`Configurable` writes an ordinary ``__init__``; the
arguments it was called with (defaults filled in) are recorded automatically and
become its config::

    {"_class_name": "cosine", "_thermogen_version": "0.1.0", ...constructor arguments...}

``_class_name`` is the *registered* name (see :mod:`thermogen.registry`), never
an import path. :func:`from_config` checks the config against the constructor's
signature and type hints before calling it: an unknown key gives a warning, a
missing required key or a value of the wrong type a :class:`ConfigError` naming
the key, the value and what was expected.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import types
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

import torch

from thermogen import registry
from thermogen.config_files import load_pretrained, read_component, write_component
from thermogen.errors import ConfigError
from thermogen.hub import push_directory
from thermogen.weights import check_state_dict

RESERVED_KEYS = ("_class_name", "_thermogen_version")

C = TypeVar("C", bound="Configurable")


def _version() -> str:
    from thermogen import __version__

    return __version__


class Configurable:
    """Mixin: records constructor arguments as a JSON config.

    Subclasses set ``registry_kind`` (one of :data:`thermogen.registry.KINDS`),
    usually by inheriting it from an interface such as ``NoiseSchedule``.
    Constructor arguments must be JSON values (numbers, strings, booleans,
    None, lists and dicts of those); tuples are stored as lists.

    Example::

        schedule = LinearSchedule(beta_end=0.012)            # the arguments it was called with are its config
        schedule.to_config()                                 # {"_class_name": "linear", ..., "beta_end": 0.012, ...}
        NoiseSchedule.from_config({"_class_name": "cosine"})   # CosineSchedule(), found by its registered name
        schedule.save_pretrained("my-schedule")              # config.json; LinearSchedule.from_pretrained reads it
    """

    registry_kind: ClassVar[str]
    _config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_init(cls.__dict__["__init__"])  # type: ignore[method-assign]

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (a copy)."""
        return json.loads(json.dumps(self.__dict__.get("_config", {})))

    def to_config(self) -> dict[str, Any]:
        """The full config: ``_class_name``, ``_thermogen_version`` and constructor arguments."""
        name = registry.name_of(self.registry_kind, type(self))
        return {"_class_name": name, "_thermogen_version": _version(), **self.config}

    @classmethod
    def from_config(cls: type[C], config: Mapping[str, Any], **overrides: Any) -> C:
        """Build an instance from ``config`` (with ``overrides`` applied on top).

        Called on a base class (``NoiseSchedule.from_config(...)``) it builds the
        registered class that ``_class_name`` names; called on a concrete class
        it builds that class and ignores ``_class_name``.
        """
        target: type[C] = cls
        if inspect.isabstract(cls) or "registry_kind" in cls.__dict__:
            target = _class_for(config, cls.registry_kind)
            if not issubclass(target, cls):
                raise ConfigError(
                    f"config names {config.get('_class_name')!r}, a {target.__name__}, which is not a {cls.__name__}"
                )
            if target is not cls:  # the named class's own from_config (it may upgrade an old config)
                return target.from_config(config, **overrides)
        check_override_names(target, overrides)
        kwargs = validate_arguments(target, {**config, **overrides})
        return target(**kwargs)

    # ------------------------------------------------------------------
    # Tensor state: nn.Modules use their state_dict; other stateful
    # components (a replay buffer) override these two methods.

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors saved to ``model.safetensors`` beside the config (empty: no weights file)."""
        if isinstance(self, torch.nn.Module):
            return dict(self.state_dict())
        return {}

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor], source: str = "state") -> None:
        """Restore what :meth:`state_tensors` returned, with strict key and shape checks."""
        check_state_dict(self.state_tensors(), tensors, source)
        if isinstance(self, torch.nn.Module):
            self.load_state_dict(dict(tensors), strict=True)

    # ------------------------------------------------------------------
    # Folders and the Hub: the files are written and read by thermogen.config_files

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Write ``config.json`` (and ``model.safetensors`` if stateful) into ``directory``, atomically.

        ``directory`` must be new, empty, or hold only what an earlier save wrote:
        a save never deletes other files (see :mod:`thermogen.saving`).
        """
        from thermogen.saving import save_directory

        save_directory(directory, self.write_to)

    def write_to(self, directory: Path) -> None:
        """Write config and state into an existing, empty ``directory`` (not atomic)."""
        write_component(self, directory)

    @classmethod
    def from_pretrained(cls: type[C], name_or_path: str | os.PathLike[str], **keywords: Any) -> C:
        """Load a component saved with :meth:`save_pretrained`, from a directory or a Hub repo.

        Args:
            name_or_path: a local folder or a Hub repo id (``"org/name"``).
            **keywords: where to look (the fields of :class:`~thermogen.hub.HubOptions`:
                ``subfolder``, ``revision``, ``local_files_only``, ``cache_dir``, ``token``);
                any other keyword overrides a config value.

        The load sees one complete version of the folder or fails clearly, and
        refuses symbolic links that point out of it (see :mod:`thermogen.loading`).
        """
        return load_pretrained(cls, name_or_path, **keywords)

    @classmethod
    def read_from(cls: type[C], directory: Path, **overrides: Any) -> C:
        """Build from ``directory/config.json`` and load ``model.safetensors`` if the component has state."""
        return read_component(cls, directory, **overrides)

    @classmethod
    def read_with_config(cls: type[C], directory: Path, config: Mapping[str, Any]) -> C:
        """Like :meth:`read_from`, with the folder's config read (and possibly upgraded) by the caller."""
        return read_component(cls, directory, config=config)

    def push_to_hub(
        self,
        repo_id: str,
        private: bool = False,
        token: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        """Upload what :meth:`save_pretrained` writes to the Hub repo ``repo_id``; return the commit URL."""

        def write(folder: Path) -> None:
            folder.mkdir(parents=True)
            self.write_to(folder)

        return push_directory(write, repo_id, private=private, token=token, commit_message=commit_message)


def _recording_init(init: Any) -> Any:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(self: Configurable, *args: Any, **kwargs: Any) -> None:
        if "_config" not in self.__dict__:
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))
            for name, param in signature.parameters.items():
                if param.kind is param.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
                elif param.kind is param.VAR_POSITIONAL and arguments.pop(name, ()):
                    raise ConfigError(
                        f"{type(self).__name__} got extra positional arguments {list(args)!r}; "
                        "a config records named arguments only, pass them by name"
                    )
            components = getattr(type(self), "component_kinds", {})
            object.__setattr__(self, "_config", _jsonable(type(self).__name__, arguments, components))
        init(self, *args, **kwargs)

    return wrapper


def _jsonable(owner: str, arguments: dict[str, Any], components: Mapping[str, str]) -> dict[str, Any]:
    """JSON copies of the constructor arguments.

    Declared components (a pipeline's ``component_kinds``) are left out: they are
    saved in their own folders. Every other argument must have an exact JSON
    form: NumPy scalars and arrays and tensors become numbers and lists, tuples
    become lists, an object with a ``to_dict()`` method becomes that dict (the
    constructor must accept it back); NaN, infinities and other objects raise
    :class:`ConfigError`.
    """
    return {k: _to_json(v, f"{owner} argument {k!r}") for k, v in arguments.items() if k not in components}


def as_saved(value: Any, where: str = "value") -> Any:
    """``value`` in the form a config stores it (tuples as lists, tensors as lists, ...); see :func:`_jsonable`."""
    return _to_json(value, where)


def _to_json(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is {value!r}; expected a finite number")
        return float(value)
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"{where} has non-string keys {bad!r}; JSON objects need string keys")
        return {k: _to_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, torch.Tensor) and not (value.is_complex() or value.requires_grad):
        return _to_json(value.detach().cpu().tolist(), where)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist") and getattr(value.dtype, "kind", "") in "biuf":
        return _to_json(value.tolist(), where)
    if callable(getattr(value, "to_dict", None)):  # e.g. a GaussianMixture; its constructor takes the dict back
        return _to_json(value.to_dict(), where)
    raise ConfigError(
        f"{where} is a {type(value).__name__} ({value!r:.60}), which has no exact JSON form; "
        "a config holds numbers, strings, booleans, None, and lists and dicts of those"
    )


def _check_finite_values(value: Any, where: str) -> None:
    """NaN and infinities (which ``json.loads`` accepts) anywhere in a config value raise ConfigError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value!r}; expected a finite number")
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_finite_values(v, f"{where}[{k!r}]")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_finite_values(v, f"{where}[{i}]")


def _class_for(config: Mapping[str, Any], kind: str) -> type[Any]:
    name = config.get("_class_name")
    if not isinstance(name, str):
        raise ConfigError(f"config has no '_class_name' string (got {name!r}); expected a registered {kind[:-1]} name")
    obj = registry.get(kind, name)
    if not isinstance(obj, type):
        raise ConfigError(f"registered {kind[:-1]} {name!r} is {obj!r}, not a class")
    return obj


def argument_names(cls: type[Any]) -> list[str]:
    """The keyword arguments ``cls.__init__`` takes (its config keys)."""
    signature = inspect.signature(cls.__init__)
    return [k for k, p in list(signature.parameters.items())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def check_override_names(cls: type[Any], overrides: Mapping[str, Any]) -> None:
    """Raise ConfigError for an override ``cls`` does not take.

    Unknown keys in a config *file* are dropped with a warning (a newer version may have
    written them); a keyword typed in code that would be dropped is a mistake, so it raises.
    """
    known = argument_names(cls)
    unknown = sorted(set(overrides) - set(known) - set(RESERVED_KEYS))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no argument {', '.join(map(repr, unknown))}; it takes {known}")


def validate_arguments(cls: type[Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``config`` against ``cls.__init__``; return the keyword arguments to pass.

    Unknown keys are dropped with a warning naming them; missing required keys
    and mistyped values raise :class:`ConfigError`.
    """
    signature = inspect.signature(cls.__init__)
    params = {
        k: p for k, p in list(signature.parameters.items())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    accepts_extra = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # unresolvable annotations: check presence only
        hints = {}
    given = {k: v for k, v in config.items() if k not in RESERVED_KEYS}
    unknown = sorted(set(given) - set(params))
    if unknown and not accepts_extra:
        warnings.warn(f"{cls.__name__} config: ignoring unknown keys {unknown}", stacklevel=3)
        given = {k: v for k, v in given.items() if k in params}
    missing = [k for k, p in params.items() if p.default is p.empty and k not in given]
    if missing:
        raise ConfigError(f"{cls.__name__} config is missing required keys {missing}")
    kwargs = {}
    for key, value in given.items():
        _check_finite_values(value, f"{cls.__name__} config key {key!r}")
        hint = hints.get(key)
        if hint is not None and not _matches(value, hint):
            raise ConfigError(
                f"{cls.__name__} config key {key!r} has value {value!r} of type "
                f"{type(value).__name__}; expected {_describe(hint)}"
            )
        kwargs[key] = _coerce(value, hint)
    return kwargs


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a type hint (JSON lists count as tuples/sequences)."""
    if hint is Any or hint is object:
        return True
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or origin is types.UnionType:
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
        return not args or all(_matches(v, args[0]) for v in value)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, Mapping)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this checker does not understand: accept


def _coerce(value: Any, hint: Any) -> Any:
    """Turn JSON lists back into tuples where the constructor expects a tuple."""
    if hint is None or not isinstance(value, list):
        return value
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is tuple:
                return tuple(value)
        return value
    return tuple(value) if origin is tuple or hint is tuple else value


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def from_config(config: Mapping[str, Any], kind: str | None = None, **overrides: Any) -> Any:
    """Build whatever registered component ``config["_class_name"]`` names.

    ``kind`` restricts the lookup to one registry kind; without it every kind is
    searched in the order of :data:`thermogen.registry.KINDS` and an ambiguous
    name is an error.
    """
    name = config.get("_class_name")
    if not isinstance(name, str):
        raise ConfigError(f"config has no '_class_name' string (got {name!r})")
    kinds = [kind] if kind is not None else [k for k in registry.KINDS if name in registry.names(k)]
    if not kinds:
        raise ConfigError(f"no registered component is called {name!r}")
    if len(kinds) > 1:
        raise ConfigError(f"{name!r} is registered as several kinds {kinds}; pass kind=")
    cls = _class_for(config, kinds[0])
    return cls.from_config(config, **overrides)
