"""Hub failures end in PretrainedNotFoundError naming the repo, the revision and what the Hub answered."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pytest

from thermogen.errors import PretrainedNotFoundError
from thermogen.hub import HubOptions, resolve_directory
from thermogen.schedules.cosine import OffsetCosineSchedule
from thermogen.testing.hub_server import HubError, _Handler


def answer_every_request(monkeypatch: pytest.MonkeyPatch, route) -> None:
    monkeypatch.setattr(_Handler, "_route", route)


def test_server_error_is_not_called_offline(local_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(self, *args):
        raise HubError(500, "internal error")

    answer_every_request(monkeypatch, fail)
    with pytest.raises(PretrainedNotFoundError) as caught:
        resolve_directory("org/model", HubOptions(cache_dir=tmp_path))
    message = str(caught.value)
    assert "'org/model' at revision 'main'" in message and "the Hub answered HTTP 500" in message
    assert "offline" not in message and local_hub.endpoint in message
    assert caught.value.__cause__ is not None


def test_missing_repo_names_the_answer_and_the_local_path(local_hub, tmp_path: Path) -> None:
    with pytest.raises(PretrainedNotFoundError, match=r"repo not found: 'org/nothing'.*HTTP 404.*no local folder"):
        resolve_directory("org/nothing", HubOptions(cache_dir=tmp_path))


def test_mistyped_relative_path_says_no_such_local_folder(local_hub, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PretrainedNotFoundError, match=rf"no local folder {tmp_path / 'outputs' / 'pipline'} exists"):
        resolve_directory("outputs/pipline", HubOptions(cache_dir=tmp_path / "cache"))


def test_empty_and_missing_revisions(local_hub, tmp_path: Path) -> None:
    OffsetCosineSchedule().push_to_hub("org/schedule", token=local_hub.token)
    with pytest.raises(PretrainedNotFoundError, match="revision='' for 'org/schedule' is empty"):
        resolve_directory("org/schedule", HubOptions(revision="", cache_dir=tmp_path))
    with pytest.raises(PretrainedNotFoundError, match=r"'org/schedule' at revision 'v9'.*HTTP 404"):
        resolve_directory("org/schedule", HubOptions(revision="v9", cache_dir=tmp_path))


def test_non_json_answer_is_translated(local_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer_every_request(monkeypatch, lambda self, *args: (200, b"<html>proxy login</html>", {}))
    with pytest.raises(PretrainedNotFoundError, match=r"could not download 'org/model' .*unusable") as caught:
        resolve_directory("org/model", HubOptions(cache_dir=tmp_path))
    assert caught.value.__cause__ is not None


def test_time_out_is_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def time_out(*args, **kwargs):
        raise TimeoutError("read timed out")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", time_out)
    with pytest.raises(PretrainedNotFoundError, match=r"'org/model'.*TimeoutError: read timed out") as caught:
        resolve_directory("org/model", HubOptions(cache_dir=tmp_path))
    assert isinstance(caught.value.__cause__, TimeoutError)


def test_empty_repo_says_it_is_empty(local_hub, tmp_path: Path) -> None:
    huggingface_hub.HfApi(token=local_hub.token).create_repo("org/empty")
    with pytest.raises(
        PretrainedNotFoundError, match=r"'org/empty' at revision 'main' .* is empty: the repo has no files"
    ):
        resolve_directory("org/empty", HubOptions(cache_dir=tmp_path))
