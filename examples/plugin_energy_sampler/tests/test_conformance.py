"""The RWM sampler passes thermogen's conformance kit (pytest examples/plugin_energy_sampler/tests)."""

import pytest

from thermogen.testing.conformance import energy_samplers


@pytest.mark.parametrize("check", energy_samplers.CHECKS, ids=lambda check: check.__name__)
def test_rwm_conforms(check) -> None:
    assert check("rwm").verdict == "pass"
