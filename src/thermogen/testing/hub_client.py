"""Point the real ``huggingface_hub`` client at a :class:`~thermogen.testing.hub_server.LocalHub`.

``huggingface_hub`` reads most settings at *import* time, so environment variables alone are not
enough inside a running process: :func:`patch_client` sets the import-time copies too.
:func:`local_hub` does all of it for a ``with`` block and undoes it afterwards::

    from thermogen.testing.hub_client import local_hub

    with local_hub() as hub:                    # a LocalHub on 127.0.0.1, client pointed at it
        pipe.push_to_hub("org/tiny", token=hub.token)
        again = Pipeline.from_pretrained("org/tiny")

Only huggingface_hub 2.x is known (:data:`TESTED_HUB_MAJOR`); other versions raise
``RuntimeError``. thermogen's own pytest fixture (tests/hub_fixtures.py) uses :func:`patch_client`
with pytest's ``monkeypatch`` and adds a network audit.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from thermogen.testing.hub_server import LocalHub

TEST_TOKEN = "test-token"
TESTED_HUB_MAJOR = 2  # patch_client knows the private settings of this major version only
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class Patcher(Protocol):
    """What :func:`patch_client` needs: pytest's ``MonkeyPatch`` has it, and so does :class:`SimplePatcher`.

    Example::

        patch_client(monkeypatch, hub.endpoint, *prepare_home(tmp_path))        # in a pytest test
        patch_client(SimplePatcher(), hub.endpoint, *prepare_home(tmp_path))    # anywhere else
    """

    def setattr(self, target: Any, name: str, value: Any) -> None: ...
    def setenv(self, name: str, value: str) -> None: ...
    def delenv(self, name: str, raising: bool = True) -> None: ...


class SimplePatcher:
    """A minimal monkeypatch without pytest: ``setattr``, ``setenv``, ``delenv`` and ``undo``.

    Example::

        patcher = SimplePatcher()
        patcher.setenv("HF_HUB_OFFLINE", "1")
        ...                                                  # code that must not reach the network
        patcher.undo()                                       # the environment as it was, in reverse order
    """

    def __init__(self) -> None:
        self._undo: list[Any] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        old = getattr(target, name)
        self._undo.append(lambda: setattr(target, name, old))
        setattr(target, name, value)

    def setenv(self, name: str, value: str) -> None:
        self._remember_env(name)
        os.environ[name] = value

    def delenv(self, name: str, raising: bool = True) -> None:
        if name not in os.environ and raising:
            raise KeyError(name)
        self._remember_env(name)
        os.environ.pop(name, None)

    def _remember_env(self, name: str) -> None:
        old = os.environ.get(name)
        self._undo.append(lambda: os.environ.pop(name, None) if old is None else os.environ.__setitem__(name, old))

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def check_client_version() -> None:
    """Raise ``RuntimeError`` unless huggingface_hub is the major version :func:`patch_client` knows."""
    import huggingface_hub

    if int(huggingface_hub.__version__.split(".")[0]) != TESTED_HUB_MAJOR:
        raise RuntimeError(
            f"huggingface_hub {huggingface_hub.__version__}: the local Hub patches the import-time settings "
            f"of huggingface_hub {TESTED_HUB_MAJOR}.x only"
        )


def patch_client(mp: Patcher, endpoint: str, hf_home: Path, cache: Path) -> None:
    """Point every import-time copy of the Hub settings in ``huggingface_hub`` 2.x at ``endpoint``."""
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


def prepare_home(root: Path) -> tuple[Path, Path]:
    """``(hf_home, cache)`` under ``root``, pre-seeded so the client needs nothing from the network."""
    hf_home, cache = root / "hf_home", root / "hf_home" / "hub"
    cache.mkdir(parents=True)
    (hf_home / ".agent_harnesses.json").write_text(json.dumps({"standardEnvVars": [], "harnesses": {}}))
    return hf_home, cache


def point_environment(mp: Patcher, hub: LocalHub, hf_home: Path, cache: Path) -> None:
    """Environment and client settings for ``hub``: no proxies, no other token, loopback endpoint, no telemetry."""
    from huggingface_hub.utils import _http

    for var in (*PROXY_VARS, "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        mp.delenv(var, raising=False)
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")
    mp.setenv("HF_ENDPOINT", hub.endpoint)
    mp.setenv("HF_HOME", str(hf_home))
    mp.setenv("HF_HUB_CACHE", str(cache))
    mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    mp.setenv("HF_HUB_DISABLE_XET", "1")
    if hub.token:
        mp.setenv("HF_TOKEN", hub.token)  # so code that pushes without token= is authenticated
    patch_client(mp, hub.endpoint, hf_home, cache)
    _http.close_session()  # fresh httpx client: no pooled connections, env re-read


@contextlib.contextmanager
def local_hub(token: str = TEST_TOKEN) -> Iterator[LocalHub]:
    """A running :class:`LocalHub` (127.0.0.1, in memory) with the client pointed at it, for a ``with`` block."""
    from huggingface_hub.utils import _http

    check_client_version()
    patcher = SimplePatcher()
    with tempfile.TemporaryDirectory() as tmp:
        hub = LocalHub(token=token).start()
        try:
            point_environment(patcher, hub, *prepare_home(Path(tmp)))
            yield hub
        finally:
            hub.stop()
            patcher.undo()
            _http.close_session()
