"""Results of conformance checks: :class:`ConformanceError`, :class:`CheckResult` and the table.

A check is a function ``check_<property>(component, ...) -> CheckResult``. It returns a
result with verdict ``"pass"`` (or ``"skip"``, with the reason as its measured value)
and raises :class:`ConformanceError`, an ``AssertionError``, when the component breaks
the property. The error's message names the property, the input and the measured
value; :func:`run_check` turns it into a ``"fail"`` result so a runner can tabulate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PASS, FAIL, SKIP = "pass", "fail", "skip"


class ConformanceError(AssertionError):
    """A component breaks a documented property.

    Attributes:
        check: the property's name, e.g. ``"variance_preserving"``.
        measured: what the kit measured (a short string), e.g. ``"signal² + noise² = 1.21 at t = 1.0"``.

    Example::

        try:
            schedules.check_variance_preserving(MySchedule())
        except ConformanceError as error:                    # an AssertionError: a failed test under pytest
            error.check, error.measured                      # "variance_preserving", e.g. "signal² + noise² = 2"
    """

    def __init__(self, check: str, message: str, measured: str) -> None:
        super().__init__(f"{check}: {message} (measured: {measured})")
        self.check = check
        self.measured = measured


@dataclass(frozen=True)
class CheckResult:
    """One check on one component: ``name``, ``verdict`` (pass / fail / skip), ``measured`` value, ``component``.

    Example::

        result = run_check(schedules.check_variance_preserving, "cosine")
        result.verdict, result.measured                      # "pass", "max |signal² + noise² - 1| = 2.2e-16"
        print(format_table(run_checks("cosine")))            # one row per check
    """

    name: str
    verdict: str
    measured: str
    component: str = ""
    message: str = ""

    @property
    def passed(self) -> bool:
        """True unless the verdict is ``"fail"`` (a skip is not a failure)."""
        return self.verdict != FAIL


def passed(name: str, measured: str) -> CheckResult:
    return CheckResult(name, PASS, measured)


def skipped(name: str, reason: str) -> CheckResult:
    return CheckResult(name, SKIP, reason)


def require(condition: bool, check: str, message: str, measured: str) -> None:
    """Raise :class:`ConformanceError` unless ``condition``."""
    if not condition:
        raise ConformanceError(check, message, measured)


def run_check(check: Callable[..., CheckResult], component: Any, label: str = "", **options: Any) -> CheckResult:
    """Run one check; a :class:`ConformanceError` (or any exception the component raises) becomes a ``fail``."""
    name = check.__name__.removeprefix("check_")
    try:
        result = check(component, **options)
    except ConformanceError as error:
        return CheckResult(error.check, FAIL, error.measured, label, str(error))
    except Exception as error:  # a component that crashes fails the check it crashed in
        text = f"{type(error).__name__}: {error}"
        return CheckResult(name, FAIL, text.splitlines()[0][:120], label, f"{name}: raised {text}")
    return CheckResult(result.name, result.verdict, result.measured, label, result.message)


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: component, check, verdict, measured value."""
    rows = [("component", "check", "verdict", "measured")]
    rows += [(r.component, r.name, r.verdict.upper(), r.measured) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths)), row[3]]).rstrip() for row in rows]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results)} checks: {len(results) - failed} passed or skipped, {failed} failed")
    return "\n".join(lines)
