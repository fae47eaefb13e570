"""Where a pretrained directory comes from: a local folder, a bundled name, or the Hub.

``resolve_directory("org/name", HubOptions(...))`` goes through
``huggingface_hub.snapshot_download`` (``revision``, ``cache_dir``,
``local_files_only``, ``token``; ``HF_HUB_OFFLINE`` is honoured by the client). A
local directory is used as it is. The pipelines shipped inside the package answer
to their short names (``thermogen/ddim-mnist``). :class:`HubOptions` is the one
list of the keywords every ``from_pretrained`` takes besides the name.

Every failure of the client (HTTP errors, unusable answers, time-outs) is
translated into :class:`PretrainedNotFoundError` naming the repo, the revision,
the endpoint (``HF_ENDPOINT``), what the Hub answered and what to do, with the
client's exception chained as the cause.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class HubOptions:
    """Where ``from_pretrained`` looks, besides the name: the keywords every ``from_pretrained`` takes.

    Attributes:
        subfolder: a folder inside the directory or repo that holds what is loaded.
        revision: a Hub branch, tag or commit (Hub repos only; None: main).
        local_files_only: use the local Hub cache, never the network.
        cache_dir: the Hub cache folder (default: huggingface_hub's).
        token: a Hub token for private repos (True: the stored login).

    Example::

        pipe = DiffusionPipeline.from_pretrained("org/name", revision="v1.0", local_files_only=True)  # these fields
        folder = resolve_directory("org/name", HubOptions(revision="v1.0", subfolder="model"))
    """

    subfolder: str | None = None
    revision: str | None = None
    local_files_only: bool = False
    cache_dir: str | os.PathLike[str] | None = None
    token: str | bool | None = None

    @classmethod
    def take_from(cls, keywords: dict[str, Any]) -> HubOptions:
        """Remove the option keywords from ``keywords`` (what is left are overrides) and return them."""
        return cls(**{field.name: keywords.pop(field.name) for field in fields(cls) if field.name in keywords})


def resolve_directory(name_or_path: str | os.PathLike[str], options: HubOptions | None = None) -> Path:
    """A local directory holding ``name_or_path`` (joined with ``options.subfolder``).

    Order: an existing local path; a bundled short name (when no ``revision`` is
    asked for); otherwise a Hub repo id, downloaded or taken from the cache.
    """
    options = options if options is not None else HubOptions()
    path = Path(name_or_path)
    if path.is_dir():
        root = path
    elif str(name_or_path) in bundled_names() and options.revision is None:
        root = BUNDLED_ROOT / str(name_or_path).split("/", 1)[1]
    else:
        root = _snapshot(str(name_or_path), options)
    directory = root / options.subfolder if options.subfolder else root
    if not directory.is_dir():
        raise PretrainedNotFoundError(f"{name_or_path!s} has no folder {options.subfolder!r} (in {root})")
    return directory


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "/", "~"))


def _snapshot(repo_id: str, options: HubOptions) -> Path:
    if not _looks_like_repo_id(repo_id):
        raise PretrainedNotFoundError(
            f"{repo_id!r} is neither an existing local directory nor a Hub repo id ('org/name')"
        )
    revision, local_files_only = options.revision, options.local_files_only
    if revision is not None and not revision.strip():
        raise PretrainedNotFoundError(
            f"revision={revision!r} for {repo_id!r} is empty; expected a branch, tag or commit (or None for main)"
        )
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub import errors as hf_errors

    where = f"{repo_id!r} at revision {revision or 'main'!r} on {constants.ENDPOINT}"
    local = Path(repo_id).resolve()
    no_folder = f"(no local folder {local} exists either)"
    try:
        root = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=None if options.cache_dir is None else str(options.cache_dir),
                local_files_only=local_files_only,
                token=options.token,
            )
        )
    except hf_errors.RevisionNotFoundError as exc:
        raise PretrainedNotFoundError(
            f"revision not found: {where}; the Hub answered {_answer(exc)}; check the branch, tag or commit"
        ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise PretrainedNotFoundError(
            f"repo not found: {where}; the Hub answered {_answer(exc)}: it does not exist or needs a token "
            f"{no_folder}; bundled pipelines: {', '.join(bundled_names()) or 'none'}"
        ) from exc
    except hf_errors.LocalEntryNotFoundError as exc:
        http = _find_cause(exc, hf_errors.HfHubHTTPError)
        if http is not None:
            raise PretrainedNotFoundError(
                f"could not download {where}: the Hub answered {_answer(http)} and the repo is not in the local "
                f"cache {no_folder}; check the repo id and revision, or retry later if the Hub is failing"
            ) from exc
        offline = local_files_only or constants.HF_HUB_OFFLINE
        reason = (
            "HF_HUB_OFFLINE=1 or local_files_only=True"
            if offline
            else f"the Hub could not be reached ({_describe(exc.__cause__ or exc.__context__ or exc)})"
        )
        raise PretrainedNotFoundError(
            f"not in cache and offline: {where} is not in the local cache and {reason} {no_folder}; "
            "download it once online, set HF_ENDPOINT for another Hub, or pass a local directory"
        ) from exc
    except hf_errors.HfHubHTTPError as exc:
        raise PretrainedNotFoundError(f"could not download {where}: the Hub answered {_answer(exc)}") from exc
    except Exception as exc:  # non-JSON answers, truncated downloads, time-outs: the client's own exceptions
        raise PretrainedNotFoundError(
            f"could not download {where}: {_describe(exc)}; the Hub's answer was unusable or the download was "
            "cut off; retry, or check HF_ENDPOINT if you use another Hub"
        ) from exc
    if not root.is_dir() or not any(root.iterdir()):
        raise PretrainedNotFoundError(f"{where} is empty: the repo has no files; push a pipeline to it first")
    return root


def _find_cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _answer(exc: BaseException) -> str:
    """'HTTP 500 (Internal Server Error)' from a client HTTP error, else its message."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        return _describe(exc)
    reason = getattr(response, "reason_phrase", None) or getattr(response, "reason", None) or ""
    return f"HTTP {status}" + (f" ({reason})" if reason else "")


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
