"""From what a user names (a registered name, a class, an instance) to an instance to check.

A component class may state what the kit needs to know about it in one class attribute,
``conformance``, a dict read only by the kit:

* ``"config"``: constructor arguments for the instance the kit checks (default: none);
* ``"order"``: the convergence order a deterministic diffusion sampler claims on the
  probability-flow ODE (None or absent: no claim, the order check is skipped);
* ``"steps"``: the step budget at which a sampler reaches the noise floor
  (diffusion: default 100; energy: the chain length, default the sampler's ``num_steps``);
* ``"components"``: for a pipeline, the config of each component (``{"model": {"_class_name": ...}}``);
* ``"call"``: for a pipeline, extra keywords of the call that makes images (e.g. ``{"num_inference_steps": 2}``).
"""

from __future__ import annotations

import json
from typing import Any

from thermogen import registry


def claims(component: Any) -> dict[str, Any]:
    """The ``conformance`` dict of a component's class (empty when it states nothing)."""
    cls = component if isinstance(component, type) else type(component)
    return dict(getattr(cls, "conformance", None) or {})


def resolve(component: Any, kind: str) -> Any:
    """An instance of ``component``: a registered name of ``kind``, a class (built with its stated config),
    or an instance (returned as it is)."""
    if isinstance(component, str):
        component = registry.get(kind, component)
    if isinstance(component, type):
        return component(**claims(component).get("config", {}))
    return component


def label(component: Any, kind: str) -> str:
    """The registered name of a component (or its class name when it is not registered)."""
    if isinstance(component, str):
        return component
    cls = component if isinstance(component, type) else type(component)
    try:
        return registry.name_of(kind, cls)
    except LookupError:
        return cls.__qualname__


def rebuilt_from_config(component: Any, kind: str) -> tuple[dict[str, Any], Any]:
    """``(config, from_config(json(config)))`` for ``config = component.to_config()``; fails the
    ``config_round_trip`` check unless the rebuilt object is the same class with the same config."""
    from thermogen.config import from_config
    from thermogen.testing.conformance.report import require

    config = json.loads(json.dumps(component.to_config()))
    rebuilt = from_config(config, kind=kind)
    require(
        type(rebuilt) is type(component) and rebuilt.config == component.config,
        "config_round_trip",
        "from_config(to_config())",
        f"{type(rebuilt).__name__} {rebuilt.config} vs {component.config}",
    )
    return config, rebuilt


def configuration_only_result(
    interleaved: list[Any], alone: list[Any], attributes_before: str, sampler: Any, loop: str
) -> Any:
    """The verdict of a ``configuration_only`` check: each of the ``interleaved`` results (run step by step
    alternately on one ``sampler``) equals the same ``loop`` run ``alone``, bitwise, and the sampler's
    attributes (``repr(sampler.__dict__)``) are still ``attributes_before``."""
    from thermogen.testing.conformance.report import passed, require

    for k, (mixed, single) in enumerate(zip(interleaved, alone)):
        difference = float((mixed - single).abs().max())
        require(
            difference == 0.0,
            "configuration_only",
            f"{loop} {k} run interleaved with another on the same sampler vs alone: keep {loop} state in `state`",
            f"max |difference| {difference:.3g}",
        )
    require(
        attributes_before == repr(sampler.__dict__),
        "configuration_only",
        "attributes after sampling",
        f"changed by a {loop}",
    )
    return passed("configuration_only", f"two interleaved {loop}s equal the {loop}s alone")
