"""Energy-sampler configs saved before the 1.0 redesign, read as what they mean now.

Saved configs of the built-in samplers (``_class_name`` ``sgld``, ``mala`` or ``hmc``)
changed in two ways:

* ``steps`` (the default chain length) is now ``num_steps``;
* ``sgld`` had a flag ``form``: ``"book"`` (the book's clipped chain, which ignored
  ``temperature``) is today's ``sgld``; ``"textbook"`` (unadjusted Langevin, which
  ignored ``noise_std``, ``grad_clip`` and ``sample_clip``) is today's ``ula``.

:func:`upgrade_config` rewrites such a config; the keys the old form ignored are
dropped, so the rebuilt sampler draws exactly the chain the old one drew. A
``form="textbook"`` config is loaded as ``ula`` with a FutureWarning asking for
``"_class_name": "ula"`` (re-saving the component or pipeline writes that).
Configs of the current form, and of other samplers, pass through unchanged.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from thermogen.errors import ConfigError

BUILT_IN = ("sgld", "mala", "hmc")
"""The registered names whose configs may be of the old form."""
IGNORED_BY_FORM = {"book": ("temperature",), "textbook": ("noise_std", "grad_clip", "sample_clip")}


def upgrade_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` in the current form (see the module docstring)."""
    upgraded = dict(config)
    name = upgraded.get("_class_name")
    if name not in BUILT_IN:
        return upgraded
    if "steps" in upgraded:
        steps = upgraded.pop("steps")
        upgraded.setdefault("num_steps", steps)
    if name == "sgld" and "form" in upgraded:
        form = upgraded.pop("form")
        if form not in IGNORED_BY_FORM:
            raise ConfigError(f"sgld config has form={form!r}; expected 'book' or 'textbook' (a config before 1.0)")
        for key in IGNORED_BY_FORM[form]:
            upgraded.pop(key, None)
        if form == "textbook":
            upgraded["_class_name"] = "ula"
            warnings.warn(
                'sampler config {"_class_name": "sgld", "form": "textbook"} is unadjusted Langevin, now its own '
                'sampler: loading it as ULASampler. The config should now read "_class_name": "ula", without '
                '"form" (save the sampler or pipeline again to rewrite it)',
                FutureWarning,
                stacklevel=4,
            )
    return upgraded
