"""Pytest fixture ``local_hub``: the real ``huggingface_hub`` client against the kit's loopback Hub
(:class:`thermogen.testing.hub_server.LocalHub`).

Use it from a test module (tests/ has no ``__init__.py``, so pytest puts tests/ on ``sys.path``)::

    import hub_fixtures

    local_hub = hub_fixtures.local_hub  # re-export so pytest finds the fixture (and ruff sees no F811)

    def test_push(local_hub):
        HfApi().create_repo("org/name", token=local_hub.token)

or register it once for the whole suite with ``pytest_plugins = ["hub_fixtures"]`` in the root conftest.

``huggingface_hub`` reads most settings at *import* time, so setting environment variables is not
enough inside a test: the fixture sets the env vars (for subprocesses and code that reads them late)
AND monkeypatches the import-time copies (``thermogen.testing.hub_client.patch_client``).
Everything is restored afterwards.
Objects a library built before the fixture ran (e.g. a module-level ``HfApi()``) keep their endpoint.

While the fixture is active, an audit hook records every socket connect / name lookup; the fixture
fails at teardown if anything other than loopback was contacted.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from thermogen.testing.hub_client import (
    TEST_TOKEN,
    check_client_version,
    point_environment,
    prepare_home,
)
from thermogen.testing.hub_server import LocalHub

# ---- network audit: record every outgoing address while a fixture is active ---------------------
_SEEN: list[list[Any]] = []  # stack of recording lists; audit hooks cannot be removed, so we toggle


def _audit(event: str, args: tuple) -> None:
    if not _SEEN:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple):  # AF_UNIX addresses are str/bytes: local by definition
            _SEEN[-1].append(address[0])
    elif event == "socket.getaddrinfo":
        _SEEN[-1].append(args[0])


sys.addaudithook(_audit)


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host in (None, "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


# ---- what the fixture yields --------------------------------------------------------------------
@dataclass
class HubFixture:
    hub: LocalHub
    endpoint: str
    hf_home: Path
    cache_dir: Path  # == HF_HUB_CACHE
    token: str = TEST_TOKEN
    contacted: list[Any] = field(default_factory=list)  # hosts seen by the network audit hook
    _mp: pytest.MonkeyPatch | None = None

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        """Files of ``repo_id`` at ``revision`` (branch or sha), read straight from the server."""
        return self.hub.list_files(repo_id, revision=revision, repo_type=repo_type)

    def go_offline(self) -> None:
        """Stop the server and switch the client to offline mode (env var + import-time constant)."""
        import huggingface_hub.constants as hf_constants
        from huggingface_hub.utils import _http

        self.hub.stop()
        _http.close_session()
        assert self._mp is not None
        self._mp.setenv("HF_HUB_OFFLINE", "1")
        self._mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def local_hub(tmp_path: Path):
    """A running :class:`LocalHub` with the ``huggingface_hub`` client pointed at it.

    Yields a :class:`HubFixture` (``.endpoint``, ``.token``, ``.hub``, ``.cache_dir``, ``.hf_home``,
    ``.list_files(repo_id, revision="main", repo_type="model")``, ``.go_offline()``, ``.contacted``).
    """
    from huggingface_hub.utils import _http

    try:
        check_client_version()
    except RuntimeError as exc:
        pytest.fail(f"{exc} (pinned in pyproject's test extra); update thermogen.testing.hub_client first")
    hf_home, cache = prepare_home(tmp_path)
    hub = LocalHub(token=TEST_TOKEN).start()
    seen: list[Any] = []
    _SEEN.append(seen)
    with pytest.MonkeyPatch.context() as mp:
        point_environment(mp, hub, hf_home, cache)
        fixture = HubFixture(hub=hub, endpoint=hub.endpoint, hf_home=hf_home, cache_dir=cache, contacted=seen, _mp=mp)
        try:
            yield fixture
        finally:
            hub.stop()
            _http.close_session()
            _SEEN.remove(seen)
    foreign = sorted({str(h) for h in seen if not _is_loopback(h)})
    assert not foreign, f"test contacted non-loopback hosts: {foreign}"
