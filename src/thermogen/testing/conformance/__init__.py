"""The conformance kit: checks that a schedule, sampler, model or pipeline keeps thermogen's conventions.

Every check takes a component (a registered name, a class or an instance) and returns a
:class:`CheckResult` (name, verdict, measured value), or raises :class:`ConformanceError`
(an ``AssertionError``) whose message names the property, the input and the measured value.
Use the checks one by one in a plugin's tests::

    from thermogen.testing.conformance import schedules

    def test_variance_preserving():
        schedules.check_variance_preserving("sigmoid")

or all at once: :func:`run_checks` returns one result per applicable check (failures
included, never raised), ``pytest --thermogen-conformance`` collects one test per check and
component of a distribution, and ``thermogen check NAME`` prints the table.

What a component claims (a sampler's convergence order, the step budget, small constructor
arguments) lives in a ``conformance`` dict on its class: see :mod:`.components`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

from thermogen import registry
from thermogen.testing.conformance import diffusion_samplers, energy_samplers, models, pipelines, schedules
from thermogen.testing.conformance.components import label
from thermogen.testing.conformance.mixture import mixture_mismatches
from thermogen.testing.conformance.report import (
    FAIL,
    PASS,
    SKIP,
    CheckResult,
    ConformanceError,
    format_table,
    run_check,
)

KINDS = ("schedules", "diffusion_samplers", "energy_samplers", "models", "pipelines")
"""The kinds of component the kit checks; samplers split by family."""
CHECKS: dict[str, tuple[Callable[..., CheckResult], ...]] = {
    "schedules": schedules.CHECKS,
    "diffusion_samplers": diffusion_samplers.CHECKS,
    "energy_samplers": energy_samplers.CHECKS,
    "models": models.CHECKS,
    "pipelines": pipelines.CHECKS,
}
_GROUP = {"diffusion_samplers": "samplers", "energy_samplers": "samplers"}


def registry_kind(kind: str) -> str:
    """The registry kind (entry-point group ``thermogen.<kind>``) of a kit kind."""
    return _GROUP.get(kind, kind)


def kind_of(component: Any, kind: str | None = None) -> str:
    """The kit kind of a component: given, or found from the registry and the class's base."""
    if kind is not None:
        if kind in ("samplers", "sampler"):
            kind = None  # split by family below
        elif kind not in KINDS:
            raise ValueError(f"kind={kind!r}; expected one of {', '.join(KINDS)}")
        else:
            return kind
    if isinstance(component, str):
        found = [k for k in ("schedules", "samplers", "models", "pipelines") if component in registry.names(k)]
        if len(found) != 1:
            raise LookupError(f"{component!r} is registered as {found or 'nothing'}; pass kind=")
        component = registry.get(found[0], component)
    cls = component if isinstance(component, type) else type(component)
    from thermogen.interfaces import NoiseSchedule
    from thermogen.pipelines.base import Pipeline
    from thermogen.samplers import DiffusionSampler, EnergySampler

    for base, name in (
        (NoiseSchedule, "schedules"),
        (DiffusionSampler, "diffusion_samplers"),
        (EnergySampler, "energy_samplers"),
        (Pipeline, "pipelines"),
    ):
        if issubclass(cls, base):
            return name
    import torch

    if issubclass(cls, torch.nn.Module):
        return "models"
    raise LookupError(f"{cls.__qualname__} is not a schedule, sampler, model or pipeline")


def checks_for(component: Any, kind: str | None = None) -> list[tuple[str, Callable[..., CheckResult]]]:
    """``(label, check)`` for every check that applies to ``component``."""
    found = kind_of(component, kind)
    name = label(component, registry_kind(found))
    return [(name, check) for check in CHECKS[found]]


def run_checks(component: Any, kind: str | None = None) -> list[CheckResult]:
    """Run every applicable check on ``component`` (name, class or instance); failures are results, not raised."""
    return [run_check(check, component, name) for name, check in checks_for(component, kind)]


def distribution_components(distribution: str | None = None) -> Iterator[tuple[str, str]]:
    """``(registry kind, name)`` of every component a distribution registers through thermogen's entry points.

    ``None``: every distribution except thermogen itself. The component *classes* are not imported here.
    """
    for kind in ("schedules", "samplers", "models", "pipelines"):
        for ep in sorted(entry_points(group=f"thermogen.{kind}"), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else ""
            wanted = dist != registry.BUILTIN_DISTRIBUTION if distribution is None else _same(dist, distribution)
            if wanted:
                yield kind, ep.name


def _same(a: str, b: str) -> bool:
    """Distribution names compare normalised (PEP 503): ``thermogen_sigmoid`` is ``thermogen-sigmoid``."""
    import re

    return re.sub(r"[-_.]+", "-", a).lower() == re.sub(r"[-_.]+", "-", b).lower()


def resolve_target(target: str, kind: str | None = None) -> list[tuple[str, str | None]]:
    """What ``thermogen check TARGET`` means: ``[(name, kind)]`` for a distribution's components, or one name."""
    if kind is None:
        components = list(distribution_components(target))
        if components:
            return [(name, None if k == "samplers" else k) for k, name in components]
    return [(target, kind)]


__all__ = [
    "CHECKS",
    "FAIL",
    "KINDS",
    "PASS",
    "SKIP",
    "CheckResult",
    "ConformanceError",
    "checks_for",
    "diffusion_samplers",
    "distribution_components",
    "energy_samplers",
    "format_table",
    "kind_of",
    "mixture_mismatches",
    "models",
    "pipelines",
    "resolve_target",
    "run_check",
    "run_checks",
    "schedules",
]
