"""Every public class has an ``Example::`` block in its docstring (the project rule).

A public class is one defined in a module of ``thermogen`` or ``thermogen_pytest``
(``cls.__module__`` is that module) whose name, and every component of whose
module path, does not start with ``_``. Only imports run here: no example is
executed (the examples in README.md and docs/ run in test_docs_code.py).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import thermogen
import thermogen_pytest

NOT_IMPORTED = {"thermogen.__main__", "thermogen.cli.__main__"}
"""``python -m`` entry points: importing one runs the CLI and calls ``sys.exit``. Every other
module of the package only defines things when imported."""

PENDING: set[str] = set()  # classes whose example is still being written (none)


def _raise(name: str) -> None:
    raise ImportError(f"cannot import {name}")


def modules() -> list[ModuleType]:
    """Every module of thermogen (but the ``__main__`` ones) and the pytest plugin's module."""
    found = [thermogen, thermogen_pytest]
    for info in pkgutil.walk_packages(thermogen.__path__, "thermogen.", onerror=_raise):
        if info.name not in NOT_IMPORTED:
            found.append(importlib.import_module(info.name))
    return found


def public_classes() -> dict[str, type]:
    """``"module.Class" -> class`` for every public class."""
    classes = {}
    for module in modules():
        if any(part.startswith("_") for part in module.__name__.split(".")):
            continue
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_"):
                classes[f"{module.__name__}.{name}"] = value
    return classes


def has_example(cls: type) -> bool:
    return "Example::" in (cls.__dict__.get("__doc__") or "")  # its own docstring, not a base class's


def test_every_public_class_has_an_example() -> None:
    missing = sorted(name for name, cls in public_classes().items() if name not in PENDING and not has_example(cls))
    assert not missing, (
        f"{len(missing)} public classes have no 'Example::' block in their docstring:\n  " + "\n  ".join(missing)
    )


def test_pending_lists_only_classes_still_without_an_example() -> None:
    classes = public_classes()
    gone = sorted(PENDING - set(classes))
    done = sorted(name for name in PENDING & set(classes) if has_example(classes[name]))
    assert not gone, "PENDING names classes that do not exist (renamed or removed?):\n  " + "\n  ".join(gone)
    assert not done, "PENDING names classes that now have an example; remove them from it:\n  " + "\n  ".join(done)


def test_the_walk_finds_the_whole_package() -> None:
    names = {module.__name__ for module in modules()}
    assert {"thermogen.samplers.diffusion.ddim", "thermogen.testing.conformance.report", "thermogen_pytest"} <= names
