"""Names -> classes, through Python entry points.

Every component thermogen can build from a config is looked up here by a
*registered name* (``"cosine"``, ``"ddim"``, ``"unet"``), never by an import
path, so loading a config can only construct classes that an installed package
chose to register.

Sources, in order of precedence when two provide the same name:

1. ``register(kind, name)`` in the running process (notebooks, tests): the
   latest registration wins.
2. Entry points in the group ``thermogen.<kind>``. thermogen's own built-ins
   register this way too (see its ``pyproject.toml``), so a third-party plugin
   takes exactly the same path. When two distributions provide one name, a
   warning names both and the winner is deterministic: the ``thermogen``
   distribution itself first, otherwise the distribution whose name sorts first.

Nothing is imported until a name is asked for. A plugin that fails to import
(whatever it raises, ``SystemExit`` and ``KeyboardInterrupt`` included) or that
registers something other than a class is reported with a warning by
:func:`load_all` and skipped, and raises :class:`PluginError` (chaining the
original exception) when its name is requested.

Saving needs the way back, class -> name (:func:`name_of`): without importing
anything when an entry point spells the class's own ``module:qualname``, else by
importing the providers of that kind and comparing the classes (an entry point
may name a class where its package re-exports it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from thermogen.errors import PluginError

KINDS = ("schedules", "samplers", "models", "pipelines", "components")
"""The component families; each is the entry-point group ``thermogen.<kind>``."""

BUILTIN_DISTRIBUTION = "thermogen"

T = TypeVar("T")


@dataclass(frozen=True)
class _Provider:
    entry_point: EntryPoint
    distribution: str


_in_process: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
_entry_point_cache: dict[str, dict[str, _Provider]] = {}
_loaded: dict[tuple[str, str], Any] = {}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")


def _provider_rank(provider: _Provider) -> tuple[int, str]:
    return (provider.distribution != BUILTIN_DISTRIBUTION, provider.distribution)


def _entry_points(kind: str) -> dict[str, _Provider]:
    """The winning entry point for each name in group ``thermogen.<kind>`` (cached)."""
    if kind in _entry_point_cache:
        return _entry_point_cache[kind]
    candidates: dict[str, list[_Provider]] = {}
    for ep in entry_points(group=f"thermogen.{kind}"):
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        candidates.setdefault(ep.name, []).append(_Provider(ep, dist))
    winners: dict[str, _Provider] = {}
    for name, providers in candidates.items():
        # The same distribution can be seen twice (e.g. an editable install plus a
        # build directory on sys.path); those are not a clash.
        unique = {(p.distribution, p.entry_point.value): p for p in providers}
        ranked = sorted(unique.values(), key=_provider_rank)
        if len({p.entry_point.value for p in ranked}) > 1:
            names = ", ".join(f"{p.distribution} ({p.entry_point.value})" for p in ranked)
            warnings.warn(
                f"{kind} name {name!r} is provided by several packages: {names}; using {ranked[0].distribution}",
                stacklevel=3,
            )
        winners[name] = ranked[0]
    _entry_point_cache[kind] = winners
    return winners


def refresh() -> None:
    """Forget discovered entry points (call after installing a plugin in a running process)."""
    _entry_point_cache.clear()
    _loaded.clear()


def names(kind: str) -> list[str]:
    """Sorted registered names of one kind, without importing any plugin."""
    _check_kind(kind)
    return sorted(set(_entry_points(kind)) | set(_in_process[kind]))


def get(kind: str, name: str) -> Any:
    """The object registered as ``name`` in ``kind``; imports its plugin on first use.

    Raises:
        PluginError: the name is unknown (the message lists the known ones), or
            its plugin failed to import (the original exception is chained).
    """
    _check_kind(kind)
    if name in _in_process[kind]:
        return _in_process[kind][name]
    if (kind, name) in _loaded:
        return _loaded[(kind, name)]
    provider = _entry_points(kind).get(name)
    if provider is None:
        known = ", ".join(names(kind)) or "none"
        raise PluginError(f"unknown {kind[:-1]} {name!r}; registered {kind}: {known}")
    where = f"{kind[:-1]} {name!r} from package {provider.distribution!r} ({provider.entry_point.value})"
    try:
        obj = provider.entry_point.load()
    except BaseException as exc:  # a plugin may raise anything at import: SystemExit, KeyboardInterrupt too
        raise PluginError(f"{where} failed to import: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, type):
        raise PluginError(f"{where} is a {type(obj).__name__}, not a class; a plugin registers classes")
    _loaded[(kind, name)] = obj
    _remember_name(obj, kind, name)
    return obj


def load_all(kind: str) -> dict[str, Any]:
    """Import every provider of ``kind``; a failing plugin gives a warning and is left out."""
    loaded: dict[str, Any] = {}
    for name in names(kind):
        try:
            loaded[name] = get(kind, name)
        except PluginError as exc:
            warnings.warn(str(exc), stacklevel=2)
    return loaded


def register(kind: str, name: str) -> Callable[[T], T]:
    """Decorator registering a class in this process under ``kind``/``name``.

    In-process registrations take precedence over entry points, and a later
    registration of the same name replaces an earlier one (so re-running a
    notebook cell works).

    Example::

        @register("schedules", "my_sigmoid")
        class MySigmoid(NoiseSchedule): ...
    """
    _check_kind(kind)

    def decorate(obj: T) -> T:
        if not isinstance(obj, type):
            raise PluginError(f"cannot register {obj!r} as {kind[:-1]} {name!r}: it is not a class")
        _in_process[kind][name] = obj
        _remember_name(obj, kind, name, force=True)
        return obj

    return decorate


def unregister(kind: str, name: str) -> None:
    """Remove an in-process registration (entry points are unaffected)."""
    _check_kind(kind)
    obj = _in_process[kind].pop(name, None)
    names_by_kind = getattr(obj, "__dict__", {}).get("_registered_names", {})
    if names_by_kind.get(kind) == name:
        del names_by_kind[kind]


def _remember_name(obj: Any, kind: str, name: str, force: bool = False) -> None:
    """Note on a class the name it was registered or first requested under, per kind."""
    if not isinstance(obj, type):
        return
    if "_registered_names" not in obj.__dict__:
        obj._registered_names = {}  # type: ignore[attr-defined]
    if force or kind not in obj._registered_names:  # type: ignore[attr-defined]
        obj._registered_names[kind] = name  # type: ignore[attr-defined]


def name_of(kind: str, cls: type) -> str:
    """The registered name of ``cls`` (used as ``_class_name`` in configs).

    Looks at names given by :func:`register` or by a previous :func:`get`, then
    at the entry points' ``module:qualname`` strings (no import needed). An entry
    point may name the class where a package re-exports it (``pkg:Thing`` for a
    class defined in ``pkg.sub``); so if no string matches, every provider of
    ``kind`` is imported (:func:`load_all`: a failing plugin gives a warning and
    is skipped) and the classes themselves are compared.
    """
    _check_kind(kind)
    known = cls.__dict__.get("_registered_names", {}).get(kind)
    if known is not None:
        return str(known)
    for name, obj in _in_process[kind].items():
        if obj is cls:
            return name
    target = f"{cls.__module__}:{cls.__qualname__}"
    for name, provider in sorted(_entry_points(kind).items()):
        if provider.entry_point.value.replace(" ", "") == target:
            _remember_name(cls, kind, name)
            return name
    for name, obj in load_all(kind).items():
        if obj is cls:
            return name
    raise PluginError(
        f"{cls.__qualname__} is not a registered {kind[:-1]}; register it with "
        f"@thermogen.registry.register({kind!r}, 'name') or an entry point in group thermogen.{kind}"
    )
