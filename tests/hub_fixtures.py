"""Pytest fixture ``local_hub``: the real ``huggingface_hub`` client against :class:`hubserver.LocalHub`.

Use it from a test module (tests/ has no ``__init__.py``, so pytest puts tests/ on ``sys.path``)::

    import hub_fixtures

    local_hub = hub_fixtures.local_hub  # re-export so pytest finds the fixture (and ruff sees no F811)

    def test_push(local_hub):
        HfApi().create_repo("org/name", token=local_hub.token)

or register it once for the whole suite with ``pytest_plugins = ["hub_fixtures"]`` in the root conftest.

``huggingface_hub`` reads most settings at *import* time, so setting environment variables is not
enough inside a test: the fixture sets the env vars (for subprocesses and code that reads them late)
AND monkeypatches the import-time copies, see ``_patch_client``. Everything is restored afterwards.
Objects a library built before the fixture ran (e.g. a module-level ``HfApi()``) keep their endpoint.

While the fixture is active, an audit hook records every socket connect / name lookup; the fixture
fails at teardown if anything other than loopback was contacted.
"""

from __future__ import annotations

import ipaddress
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hubserver import LocalHub

TEST_TOKEN = "test-token"
TESTED_HUB_MAJOR = 2  # _patch_client knows the private settings of this major version only
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

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


def _patch_client(mp: pytest.MonkeyPatch, endpoint: str, hf_home: Path, cache: Path) -> None:
    """Point every import-time copy of the Hub settings in ``huggingface_hub`` 2.x at the local server."""
    from urllib.parse import urlsplit

    import huggingface_hub.constants as c
    from huggingface_hub import hf_api
    from huggingface_hub.utils import _http

    host = urlsplit(endpoint).hostname
    mp.setattr(c, "ENDPOINT", endpoint)
    mp.setattr(c, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    mp.setattr(c, "HF_URL_HOSTS", c.HF_URL_HOSTS | {host})
    mp.setattr(_http, "_HUB_ORIGINS", _http._HUB_ORIGINS | {_http._url_origin(endpoint)})
    mp.setattr(hf_api.api, "endpoint", endpoint)  # module-level HfApi() behind huggingface_hub.create_repo & co
    for name, value in {
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(cache),
        "HUGGINGFACE_HUB_CACHE": str(cache),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_XET_CACHE": str(hf_home / "xet"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_XET": True,
    }.items():
        mp.setattr(c, name, value)
    # `from ..constants import X` copies, in modules that may already be imported.
    copies = {
        "huggingface_hub.utils._cache_manager": {"HF_HUB_CACHE": str(cache)},
        "huggingface_hub.utils._cache_assets": {"HF_ASSETS_CACHE": str(hf_home / "assets")},
        "huggingface_hub.utils._git_credential": {"ENDPOINT": endpoint},
        "huggingface_hub.cli.auth": {"ENDPOINT": endpoint},
    }
    for module_name, attrs in copies.items():
        module = sys.modules.get(module_name)
        for name, value in attrs.items():
            if module is not None and hasattr(module, name):
                mp.setattr(module, name, value)


@pytest.fixture
def local_hub(tmp_path: Path):
    """A running :class:`LocalHub` with the ``huggingface_hub`` client pointed at it.

    Yields a :class:`HubFixture` (``.endpoint``, ``.token``, ``.hub``, ``.cache_dir``, ``.hf_home``,
    ``.list_files(repo_id, revision="main", repo_type="model")``, ``.go_offline()``, ``.contacted``).
    """
    import huggingface_hub
    from huggingface_hub.utils import _http

    major = int(huggingface_hub.__version__.split(".")[0])
    if major != TESTED_HUB_MAJOR:
        pytest.fail(
            f"huggingface_hub {huggingface_hub.__version__}: the local-Hub fixture patches the import-time settings "
            f"of huggingface_hub {TESTED_HUB_MAJOR}.x (pinned in pyproject's test extra); update _patch_client first"
        )
    hf_home, cache = tmp_path / "hf_home", tmp_path / "hf_home" / "hub"
    cache.mkdir(parents=True)
    # Pre-seed the agent-harness registry so the client never needs to fetch it.
    (hf_home / ".agent_harnesses.json").write_text(json.dumps({"standardEnvVars": [], "harnesses": {}}))

    hub = LocalHub(token=TEST_TOKEN).start()
    seen: list[Any] = []
    _SEEN.append(seen)
    with pytest.MonkeyPatch.context() as mp:
        for var in _PROXY_VARS:
            mp.delenv(var, raising=False)
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.delenv(var, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("HF_ENDPOINT", hub.endpoint)
        mp.setenv("HF_HOME", str(hf_home))
        mp.setenv("HF_HUB_CACHE", str(cache))
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        mp.setenv("HF_HUB_DISABLE_XET", "1")
        mp.setenv("HF_TOKEN", TEST_TOKEN)  # so code that pushes without token= is authenticated
        _patch_client(mp, hub.endpoint, hf_home, cache)
        _http.close_session()  # fresh httpx client: no pooled connections, env re-read
        fixture = HubFixture(hub=hub, endpoint=hub.endpoint, hf_home=hf_home, cache_dir=cache, contacted=seen, _mp=mp)
        try:
            yield fixture
        finally:
            hub.stop()
            _http.close_session()
            _SEEN.remove(seen)
    foreign = sorted({str(h) for h in seen if not _is_loopback(h)})
    assert not foreign, f"test contacted non-loopback hosts: {foreign}"
