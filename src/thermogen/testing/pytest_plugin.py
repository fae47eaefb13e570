"""The collector behind ``pytest --thermogen-conformance[=DIST]`` (registered by :mod:`thermogen_pytest`).

One test item per conformance check and component that the distribution DIST registers
through thermogen's entry-point groups. Without a value, DIST is the project under test
(``[project] name`` in the rootdir's pyproject.toml) when it registers components, else
every installed distribution but thermogen itself. A failing item reports the
:class:`~thermogen.testing.conformance.ConformanceError` message; a check that does not
apply (e.g. no stated convergence order) is a skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from thermogen.testing.conformance import SKIP, CheckResult, ConformanceError, checks_for, distribution_components


def project_name(rootdir: Path) -> str | None:
    """``[project] name`` of ``rootdir/pyproject.toml``, or None."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    path = rootdir / "pyproject.toml"
    if not path.is_file():
        return None
    name = tomllib.loads(path.read_text()).get("project", {}).get("name")
    return name if isinstance(name, str) else None


def targets(config: pytest.Config, target: str) -> list[tuple[str, str]]:
    """``(registry kind, name)`` of the components to check."""
    if target:
        return list(distribution_components(target))
    name = project_name(Path(config.rootpath))
    own = list(distribution_components(name)) if name else []
    return own or list(distribution_components(None))


class ConformanceItem(pytest.Item):
    """One check on one component; fails with the check's ConformanceError.

    Example::

        item = ConformanceItem.from_parent(collector, name="variance_preserving[sigmoid]",   # what the collector makes
                                           check=schedules.check_variance_preserving, component="sigmoid",
                                           kind="schedules")
        item.runtest()                                       # ConformanceError if "sigmoid" breaks the property
    """

    def __init__(self, *, check: Callable[..., CheckResult], component: str, kind: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check, self.component, self.kind = check, component, kind

    def runtest(self) -> None:
        result = self.check(self.component)
        if result.verdict == SKIP:
            pytest.skip(result.measured)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ConformanceError):
            return f"{self.component}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return Path(self.config.rootpath), None, f"thermogen conformance: {self.name}"


class ConformanceCollector(pytest.Collector):
    """The node under which the conformance items live (``thermogen-conformance::<check>[<component>]``).

    Example::

        collector = ConformanceCollector.from_parent(session, name="thermogen-conformance",
                                                     components=[("schedules", "sigmoid")])
        items = list(collector.collect())                    # one ConformanceItem per schedule check
    """

    def __init__(self, *, components: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.components = components

    def collect(self) -> Iterator[ConformanceItem]:
        for kind, name in self.components:
            family = None if kind == "samplers" else kind
            for component, check in checks_for(name, family):
                item_name = f"{check.__name__.removeprefix('check_')}[{component}]"
                yield ConformanceItem.from_parent(self, name=item_name, check=check, component=name, kind=family)


class ConformancePlugin:
    """Adds the conformance items after normal collection.

    Example::

        # what `pytest --thermogen-conformance=thermogen-sigmoid` does (thermogen_pytest.pytest_configure)
        config.pluginmanager.register(ConformancePlugin(config, "thermogen-sigmoid"), "thermogen-conformance-collector")
    """

    def __init__(self, config: pytest.Config, target: str) -> None:
        self.config, self.target = config, target

    def pytest_collection_modifyitems(self, session: pytest.Session, items: list[pytest.Item]) -> None:
        components = targets(self.config, self.target)
        if not components:
            raise pytest.UsageError(
                f"--thermogen-conformance={self.target or '(default)'}: no component is registered through "
                "thermogen's entry points by that distribution; is it installed?"
            )
        collector = ConformanceCollector.from_parent(session, name="thermogen-conformance", components=components)
        items.extend(collector.collect())
