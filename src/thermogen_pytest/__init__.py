"""thermogen's pytest plugin entry point (``pytest11``): adds ``--thermogen-conformance[=DIST]``.

This module imports nothing but pytest: without the option the plugin costs nothing
(no torch, no thermogen import at pytest startup). With it, the collector in
:mod:`thermogen.testing.pytest_plugin` adds one test per conformance check and component.
"""

from __future__ import annotations

from typing import Any

OPTION = "--thermogen-conformance"


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("thermogen", "thermogen conformance kit")
    group.addoption(
        OPTION,
        dest="thermogen_conformance",
        nargs="?",
        const="",
        default=None,
        metavar="DIST",
        help="run the conformance checks on every component the distribution DIST registers through thermogen's "
        "entry points (default: the project under test, or every installed non-built-in plugin)",
    )


def pytest_configure(config: Any) -> None:
    target = config.getoption("thermogen_conformance", default=None)
    if target is not None:
        from thermogen.testing.pytest_plugin import ConformancePlugin

        config.pluginmanager.register(ConformancePlugin(config, target), "thermogen-conformance-collector")
