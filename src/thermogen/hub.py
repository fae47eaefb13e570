"""Where a pretrained directory comes from: a local folder, a bundled name, or the Hub.

``resolve_directory("org/name")`` goes through ``huggingface_hub.snapshot_download``
(``revision``, ``cache_dir``, ``local_files_only``, ``token``; ``HF_HUB_OFFLINE``
is honoured by the client). A local directory is used as it is. The pipelines
shipped inside the package answer to their short names (``thermogen/ddim-mnist``).

The client's HTTP exceptions are translated into :class:`PretrainedNotFoundError`
with a message that says which of "repo not found", "revision not found" or
"not in cache and offline" happened.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from thermogen.errors import PretrainedNotFoundError

BUNDLED_ORG = "thermogen"
BUNDLED_ROOT = Path(__file__).resolve().parent / "pretrained"
LAYOUT_PATTERNS = (
    "model_index.json",
    "README.md",
    "config.json",
    "model.safetensors",
    "*/config.json",
    "*/model.safetensors",
)
"""Repo files a push replaces or deletes (``*`` spans folders); everything else in the repo stays."""


def bundled_names() -> list[str]:
    """Short names of the pipelines shipped inside the package, e.g. ``thermogen/ddim-mnist``."""
    if not BUNDLED_ROOT.is_dir():
        return []
    return sorted(f"{BUNDLED_ORG}/{p.name}" for p in BUNDLED_ROOT.iterdir() if (p / "model_index.json").is_file())


def resolve_directory(
    name_or_path: str | os.PathLike[str],
    subfolder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> Path:
    """A local directory holding ``name_or_path`` (joined with ``subfolder``).

    Order: an existing local path; a bundled short name (when no ``revision`` is
    asked for); otherwise a Hub repo id, downloaded or taken from the cache.
    """
    path = Path(name_or_path)
    if path.is_dir():
        root = path
    elif str(name_or_path) in bundled_names() and revision is None:
        root = BUNDLED_ROOT / str(name_or_path).split("/", 1)[1]
    else:
        root = _snapshot(str(name_or_path), revision, local_files_only, cache_dir, token)
    directory = root / subfolder if subfolder else root
    if not directory.is_dir():
        raise PretrainedNotFoundError(f"{name_or_path!s} has no folder {subfolder!r}")
    return directory


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "/", "~"))


def _snapshot(
    repo_id: str,
    revision: str | None,
    local_files_only: bool,
    cache_dir: str | os.PathLike[str] | None,
    token: str | bool | None,
) -> Path:
    if not _looks_like_repo_id(repo_id):
        raise PretrainedNotFoundError(
            f"{repo_id!r} is neither an existing local directory nor a Hub repo id ('org/name')"
        )
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import snapshot_download

    where = f"{repo_id!r}" + (f" at revision {revision!r}" if revision else "")
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=None if cache_dir is None else str(cache_dir),
                local_files_only=local_files_only,
                token=token,
            )
        )
    except hf_errors.RevisionNotFoundError as exc:
        raise PretrainedNotFoundError(f"revision not found: {where} has no revision {revision!r}") from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise PretrainedNotFoundError(
            f"repo not found: {where} does not exist on the Hub or needs a token; "
            f"bundled pipelines: {', '.join(bundled_names()) or 'none'}"
        ) from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        raise PretrainedNotFoundError(
            f"not in cache and offline: {where} is not in the local cache and the Hub could not be "
            "reached (HF_HUB_OFFLINE=1, local_files_only=True, or no network); download it once online "
            "or pass a local directory"
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        raise PretrainedNotFoundError(f"could not download {where}: {exc}") from exc


def push_directory(
    write: Callable[[Path], None],
    repo_id: str,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Write a folder with ``write(tmpdir)`` and upload it to ``repo_id`` in one commit; return the commit URL.

    The commit also deletes every file of the saved layout (``model_index.json``,
    ``README.md``, any ``config.json`` or ``model.safetensors``) that this save
    does not write, so the repo holds exactly what ``save_pretrained`` writes,
    whatever model it held before; other files (notes, images,
    ``.gitattributes``) stay.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "upload"
        write(folder)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            commit_message=commit_message or "Upload with thermogen",
            delete_patterns=list(LAYOUT_PATTERNS),
        )
    return str(getattr(info, "commit_url", info))
