"""The real ``huggingface_hub`` client round-trips against the local test Hub (no network)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import hub_fixtures
import huggingface_hub.constants as hf_constants
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    create_repo,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

local_hub = hub_fixtures.local_hub  # make the fixture visible to pytest in this module

REPO = "thermo/tiny"


def _make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": json.dumps({"dim": 4, "layers": 2}).encode(),
        "model.safetensors": os.urandom(100_000),
        "sub/notes.txt": b"hello\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _read_tree(root: str | Path) -> dict[str, bytes]:
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _upload(hub, tmp_path: Path) -> tuple[dict[str, bytes], str]:
    src = tmp_path / "src"
    src.mkdir()
    files = _make_folder(src)
    api = HfApi(token=hub.token)
    api.create_repo(REPO, exist_ok=True)
    info = api.upload_folder(repo_id=REPO, folder_path=src, commit_message="v1")
    return files, info.oid


def test_create_repo_twice(local_hub):
    url = create_repo(REPO, token=local_hub.token, exist_ok=True)
    assert url.repo_id == REPO
    assert url.startswith(local_hub.endpoint)
    again = HfApi(token=local_hub.token).create_repo(REPO, exist_ok=True)
    assert again.repo_id == REPO
    with pytest.raises(HfHubHTTPError) as exc:
        create_repo(REPO, token=local_hub.token)
    assert exc.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as exc:  # writes need the token
        create_repo("thermo/other", token="wrong-token")
    assert exc.value.response.status_code == 401


@pytest.mark.parametrize("xet_enabled", [False, True], ids=["classic", "pipelined"])
def test_upload_and_snapshot_roundtrip(local_hub, tmp_path, monkeypatch, xet_enabled):
    # With hf_xet importable, upload_folder takes the pipelined path; "regular" files still skip xet.
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", not xet_enabled)
    files, sha = _upload(local_hub, tmp_path)
    assert local_hub.list_files(REPO) == sorted(files)
    assert local_hub.list_files(REPO, revision=sha) == sorted(files)

    path = snapshot_download(REPO, cache_dir=tmp_path / "fresh_cache")
    assert _read_tree(path) == files
    assert Path(path).name == sha

    single = hf_hub_download(REPO, "model.safetensors", cache_dir=tmp_path / "other_cache")
    assert Path(single).read_bytes() == files["model.safetensors"]

    paths = [p for _, p in local_hub.hub.requests]
    assert not [p for p in paths if "lfs" in p or "xet" in p], paths
    assert local_hub.contacted and all(hub_fixtures._is_loopback(h) for h in local_hub.contacted)


def test_second_commit_and_old_revision_by_sha(local_hub, tmp_path):
    v1, sha1 = _upload(local_hub, tmp_path)
    api = HfApi(token=local_hub.token)
    v2_config = json.dumps({"dim": 8, "layers": 3}).encode()
    info = api.create_commit(
        REPO,
        operations=[
            CommitOperationAdd("config.json", v2_config),
            CommitOperationDelete("sub/notes.txt"),
        ],
        commit_message="v2",
    )
    sha2 = info.oid
    assert sha2 != sha1 and len(sha2) == 40
    assert local_hub.list_files(REPO) == ["config.json", "model.safetensors"]

    cache = tmp_path / "cache"
    latest = _read_tree(snapshot_download(REPO, cache_dir=cache))
    assert latest == {"config.json": v2_config, "model.safetensors": v1["model.safetensors"]}
    old = _read_tree(snapshot_download(REPO, revision=sha1, cache_dir=cache))
    assert old == v1
    old_cfg = hf_hub_download(REPO, "config.json", revision=sha1, cache_dir=tmp_path / "c2")
    assert Path(old_cfg).read_bytes() == v1["config.json"]

    model = api.model_info(REPO, revision=sha1)
    assert model.sha == sha1
    assert sorted(s.rfilename for s in model.siblings) == sorted(v1)
    assert api.model_info(REPO).sha == sha2


def test_errors(local_hub, tmp_path):
    _upload(local_hub, tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("thermo/missing", cache_dir=cache)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("thermo/missing", "config.json", cache_dir=cache)
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("thermo/missing")
    with pytest.raises(RevisionNotFoundError):
        snapshot_download(REPO, revision="no-such-branch", cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="f" * 40, cache_dir=cache)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "nope.bin", cache_dir=cache)
    api = HfApi()
    assert api.repo_exists(REPO) and not api.repo_exists("thermo/missing")
    assert api.file_exists(REPO, "config.json") and not api.file_exists(REPO, "nope.bin")


def test_offline_from_filled_cache(local_hub, tmp_path):
    files, sha = _upload(local_hub, tmp_path)
    online = snapshot_download(REPO)  # default cache: the fixture's HF_HUB_CACHE
    assert Path(online).is_relative_to(local_hub.cache_dir)

    local_hub.go_offline()
    assert hf_constants.HF_HUB_OFFLINE and os.environ["HF_HUB_OFFLINE"] == "1"
    n_contacts = len(local_hub.contacted)

    offline = snapshot_download(REPO)
    assert offline == online
    assert _read_tree(offline) == files
    assert Path(hf_hub_download(REPO, "config.json")).read_bytes() == files["config.json"]
    assert _read_tree(snapshot_download(REPO, revision=sha)) == files
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download("thermo/not-cached")
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "not-cached.bin")
    assert len(local_hub.contacted) == n_contacts  # offline: no socket opened at all
