"""The sigmoid schedule passes thermogen's conformance kit (run: pytest examples/plugin_schedule/tests)."""

import pytest

from thermogen.testing.conformance import schedules


@pytest.mark.parametrize("check", schedules.CHECKS, ids=lambda check: check.__name__)
def test_sigmoid_conforms(check) -> None:
    check("sigmoid")
