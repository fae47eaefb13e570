"""The MLP denoiser passes thermogen's conformance kit (pytest examples/plugin_model/tests)."""

import pytest

from thermogen.testing.conformance import models


@pytest.mark.parametrize("check", models.CHECKS, ids=lambda check: check.__name__)
def test_mlp_denoiser_conforms(check) -> None:
    assert check("mlp_denoiser").verdict == "pass"
