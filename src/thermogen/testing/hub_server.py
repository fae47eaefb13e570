"""A tiny in-memory Hugging Face Hub server for tests (stdlib only, loopback only): part of the conformance kit.

Plugin authors can use it in their own tests; :mod:`thermogen.testing.hub_client` points the
``huggingface_hub`` client at it.

It speaks just enough of the Hub HTTP protocol for the real ``huggingface_hub`` client
(2.x) to run ``create_repo``, ``upload_folder`` / ``create_commit``, ``model_info``,
``list_repo_files``, ``snapshot_download`` and ``hf_hub_download`` against it.

Design:

* Every file is a *regular* git file: preupload answers ``uploadMode: "regular"``, so the
  client sends contents base64-encoded inside the ndjson commit and never touches LFS or
  xet. File ids / ETags are git blob SHA-1s, commit ids are 40 lowercase hex chars.
* A repo is a set of immutable commits (``sha -> {path: bytes}``) plus branches
  (``name -> sha``). Any revision argument may be a branch name or a full commit sha.
* Errors carry the ``X-Error-Code`` header that the client maps to typed exceptions:
  ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``.
* Repo ids must be ``namespace/name``; ``create_repo("name")`` lands in ``user/name``.
* When ``token`` is set, write calls (create, preupload, commit) require
  ``Authorization: Bearer <token>``; reads are anonymous.

Usage::

    hub = LocalHub(token="test-token").start()
    ...  # point HF_ENDPOINT / huggingface_hub.constants.ENDPOINT at hub.endpoint
    hub.stop()
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubError", "LocalHub"]

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(revision|tree|preupload|commit)/([^/]+)(/.*)?)?$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, as the Hub reports for regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An HTTP error answer: status, optional X-Error-Code and extra headers.

    Example::

        try:
            hub.list_files("org/missing")
        except HubError as error:                            # the client sees it as an HTTP error
            error.status, error.code                         # 404, "RepoNotFound"
    """

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.headers = status, code, headers or {}


@dataclass
class Repo:
    """One repo of a :class:`LocalHub`: immutable commits (``sha -> {path: bytes}``) and branches (``name -> sha``).

    Example::

        repo = hub.repos["model", "org/tiny"]                # keyed by (repo type, repo id)
        files = repo.commits[repo.resolve("main")]           # {path: bytes} of the head of main
    """

    repo_id: str
    repo_type: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    private: bool = False  # private repos answer only authenticated requests, as on the Hub

    def resolve(self, rev: str) -> str:
        """Branch name or full commit sha -> commit sha, else RevisionNotFound."""
        if rev in self.branches:
            return self.branches[rev]
        if _SHA.match(rev) and rev in self.commits:
            return rev
        raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")

    def add_commit(self, branch: str, files: dict[str, bytes], summary: str) -> str:
        parent = self.branches.get(branch, "")
        tree = sorted((p, git_blob_sha1(b)) for p, b in files.items())
        seed = json.dumps([self.repo_id, parent, tree, summary, len(self.commits)])
        sha = hashlib.sha1(seed.encode()).hexdigest()
        self.commits[sha], self.branches[branch] = dict(files), sha
        return sha


def _wants_private(body: dict) -> bool:
    """huggingface_hub >= 1.0 sends ``"visibility": "private"``; older clients send ``"private": true``."""
    return body.get("visibility") == "private" or body.get("private") is True


class LocalHub:
    """In-memory Hub on an ephemeral 127.0.0.1 port; ``start()`` / ``stop()``.

    Example::

        with local_hub() as hub:                             # a started LocalHub, the client pointed at it
            pipe.push_to_hub("org/tiny", token=hub.token)
            hub.list_files("org/tiny")                       # ["README.md", "model/config.json", ...]
    """

    def __init__(self, token: str | None = None):
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) log, handy for assertions
        self.validated_cards: list[str] = []  # README.md texts the client asked to validate
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.endpoint = ""  # "http://127.0.0.1:<port>" once started (kept after stop)

    # ---- lifecycle -------------------------------------------------------------------
    def start(self) -> LocalHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only, ephemeral port
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="LocalHub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:  # drop kept-alive client connections so nothing is served after stop()
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- helpers for tests -----------------------------------------------------------
    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return sorted(repo.commits[repo.resolve(revision)])

    def is_private(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return self._repo(repo_type, repo_id).private

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _url(self, repo: Repo) -> str:
        return f"{self.endpoint}/{_PREFIX[repo.repo_type]}{repo.repo_id}"

    # ---- API operations (called with self._lock held) -----------------------------------
    def create_repo(self, body: dict) -> tuple[int, dict]:
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
        if repo_type not in _PREFIX:
            raise HubError(400, f"Invalid repo type {repo_type}")
        if (repo_type, repo_id) in self.repos:
            return 409, {"error": "You already created this repo", "url": self._url(self.repos[repo_type, repo_id])}
        repo = self.repos[repo_type, repo_id] = Repo(repo_id, repo_type, private=_wants_private(body))
        repo.add_commit("main", {}, "initial commit")
        return 200, {"url": self._url(repo), "name": repo_id}

    def repo_info(self, repo: Repo, rev: str) -> dict:
        sha = repo.resolve(rev)
        files = repo.commits[sha]
        siblings = [{"rfilename": p, "size": len(b), "blobId": git_blob_sha1(b)} for p, b in sorted(files.items())]
        return {"id": repo.repo_id, "sha": sha, "private": repo.private, "siblings": siblings}

    def tree(self, repo: Repo, rev: str, sub: str, recursive: bool) -> list[dict]:
        files = repo.commits[repo.resolve(rev)]
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        entries: dict[str, dict] = {}
        for path, data in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, min(depth, len(parts) - 1) + 1):  # intermediate directories
                d = prefix + "/".join(parts[:i])
                entries.setdefault(d, {"type": "directory", "path": d, "oid": hashlib.sha1(d.encode()).hexdigest()})
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
        if prefix and not entries:
            raise HubError(404, f"{sub} does not exist on {rev}", "EntryNotFound")
        return [entries[k] for k in sorted(entries)]

    def preupload(self, repo: Repo, rev: str, body: dict) -> dict:
        current = repo.commits[repo.resolve(rev)]
        out = []
        for f in body.get("files", []):
            old = current.get(f["path"])
            oid = git_blob_sha1(old) if old is not None else None
            out.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        return {"files": out, "commitOid": repo.resolve(rev)}

    def commit(self, repo: Repo, rev: str, raw: bytes) -> dict:
        if rev not in repo.branches:  # commits go to branches only
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        files = dict(repo.commits[repo.branches[rev]])
        summary = ""
        for line in filter(None, raw.splitlines()):
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
                parent = value.get("parentCommit")
                if parent and parent != repo.branches[rev]:
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"{value['path']} does not exist", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: b for p, b in files.items() if not p.startswith(folder)}
            else:  # lfsFile etc.: never requested, since preupload says "regular"
                raise HubError(400, f"Unsupported commit operation {key!r}")
        sha = repo.add_commit(rev, files, summary)
        return {"commitOid": sha, "commitUrl": f"{self._url(repo)}/commit/{sha}", "success": True}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    timeout = 30  # idle keep-alive connections end after this many seconds
    hub: LocalHub

    def setup(self) -> None:
        super().setup()
        with self.hub._lock:
            self.hub._conns.add(self.connection)

    def finish(self) -> None:
        with self.hub._lock:
            self.hub._conns.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # silence stderr logging
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path, query = unquote(url.path), parse_qs(url.query)
        hub = self.hub
        try:
            with hub._lock:  # compute the answer under the lock, send it outside
                hub.requests.append((self.command, url.path))
                status, data, headers = self._route(path, url.path, query, body)
        except HubError as e:
            headers = {**e.headers, "X-Error-Message": str(e)}
            if e.code:
                headers["X-Error-Code"] = e.code
            status, data = e.status, json.dumps({"error": str(e)}).encode()
        except (KeyError, ValueError) as e:  # malformed request bodies
            status, data, headers = 400, json.dumps({"error": f"Bad request: {e!r}"}).encode(), {}
        self._send(status, data, headers)

    do_GET = do_HEAD = do_POST = _dispatch

    def _route(self, path: str, raw_path: str, query: dict, body: bytes) -> tuple[int, bytes, dict]:
        hub, method = self.hub, self.command
        if method == "GET" and path == "/api/agent-harnesses":
            return self._json(200, {"standardEnvVars": [], "harnesses": {}})
        if method == "GET" and path == "/api/whoami-v2":
            return self._json(200, {"type": "user", "name": "user", "orgs": []})
        if method == "POST" and path == "/api/validate-yaml":  # model-card metadata check before a README upload
            self.hub.validated_cards.append(json.loads(body).get("content", ""))
            return self._json(200, {"errors": [], "warnings": []})
        if method == "POST" and path == "/api/repos/create":
            self._check_auth()
            return self._json(*hub.create_repo(json.loads(body)))

        # Match on the raw path: revisions are quoted with safe="" ("refs%2Fpr%2F1").
        if m := _API.match(raw_path):
            kind, repo_id, action, rev, rest = m.groups()
            repo = self._readable(hub._repo(_TYPES[kind], unquote(repo_id)))
            rev = unquote(rev or "main")
            if method == "GET" and action in (None, "revision"):
                return self._json(200, hub.repo_info(repo, rev))
            if method == "GET" and action == "tree":
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self._json(200, hub.tree(repo, rev, unquote(rest or ""), recursive))
            if method == "POST" and action == "preupload":
                self._check_auth()
                return self._json(200, hub.preupload(repo, rev, json.loads(body)))
            if method == "POST" and action == "commit":
                self._check_auth()
                return self._json(200, hub.commit(repo, rev, body))
        elif (m := _RESOLVE.match(raw_path)) and method in ("GET", "HEAD"):
            kind, repo_id, rev, file_path = m.groups()
            repo = self._readable(hub._repo(_TYPES[kind or "models"], unquote(repo_id)))
            sha = repo.resolve(unquote(rev))
            data = repo.commits[sha].get(unquote(file_path))
            if data is None:
                raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": sha})
            return self._file(data, sha)
        raise HubError(404, f"No route for {method} {raw_path}")

    def _readable(self, repo: Repo) -> Repo:
        """A private repo looks absent to an unauthenticated request (the Hub answers 401 RepoNotFound)."""
        token = self.hub.token
        if repo.private and token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            raise HubError(401, f"Repository {repo.repo_id} not found", "RepoNotFound")
        return repo

    def _check_auth(self) -> None:
        token = self.hub.token
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _file(self, data: bytes, sha: str) -> tuple[int, bytes, dict]:
        headers = {
            "X-Repo-Commit": sha,
            "ETag": f'"{git_blob_sha1(data)}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        status, n = 200, len(data)
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range") or "")
        if rng and (rng[1] or rng[2]):  # one range: "a-b", "a-" (resume) or suffix "-n"
            start = int(rng[1]) if rng[1] else max(n - int(rng[2]), 0)
            end = min(int(rng[2]), n - 1) if rng[1] and rng[2] else n - 1
            if start >= n:
                raise HubError(416, "Range not satisfiable", headers={"Content-Range": f"bytes */{n}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{n}"
            status, data = 206, data[start : end + 1]
        return status, data, headers

    @staticmethod
    def _json(status: int, obj: object) -> tuple[int, bytes, dict]:
        return status, json.dumps(obj).encode(), {"Content-Type": "application/json"}

    def _send(self, status: int, data: bytes, headers: dict) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
