"""The midpoint sampler passes thermogen's conformance kit, order 2 included (pytest examples/plugin_sampler/tests)."""

import pytest

from thermogen.testing.conformance import diffusion_samplers


@pytest.mark.parametrize("check", diffusion_samplers.CHECKS, ids=lambda check: check.__name__)
def test_midpoint_conforms(check) -> None:
    assert check("midpoint").verdict == "pass"
