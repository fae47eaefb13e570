"""The SDEdit pipeline passes thermogen's conformance kit: save/load and Hub round trips give the same images."""

import pytest

from thermogen.testing.conformance import pipelines


@pytest.mark.parametrize("check", pipelines.CHECKS, ids=lambda check: check.__name__)
def test_sdedit_conforms(check) -> None:
    assert check("sdedit").verdict == "pass"
