"""Uploads of finished folders (dataset, model, benchmark) to the Hugging Face Hub.

Uploads go through ``HfApi.upload_folder`` (huggingface_hub 2.x removed ``upload_large_folder``;
``upload_folder`` splits large folders into several commits and resumes an interrupted upload when
re-run). The token is resolved by huggingface_hub (``HF_TOKEN`` or the saved login) and never
read, printed or logged here.

A dataset folder publishes only the dataset (:data:`DATASET_ALLOW_PATTERNS`: ``data/train-*.parquet``
and the files a run writes next to it), never another folder someone put inside it (a model, an
evaluation's JSON). A symlink that leads out of the folder (``data/x -> /etc/passwd``) is refused:
the upload would send the file it points to.
"""

from __future__ import annotations

import logging
from pathlib import Path

from huggingface_hub.utils import filter_repo_objects

from waon_hf.dataset_card import HUB_IGNORE_PATTERNS
from waon_hf.pipeline.layout import DATA_GLOB, OUTPUT_FILES

logger = logging.getLogger(__name__)

# huggingface_hub's own defaults (.git/, .cache/huggingface/): its constant lives in a private module.
HF_DEFAULT_IGNORE_PATTERNS = [".git", ".git/*", "*/.git", "**/.git/**", ".cache/huggingface", ".cache/huggingface/*",
                              "*/.cache/huggingface", "**/.cache/huggingface/**"]
# What a dataset repo receives from a dataset folder: the data files and what the run wrote beside them.
DATASET_ALLOW_PATTERNS = [f"data/{DATA_GLOB}", *OUTPUT_FILES]


class UnsafeLinkError(ValueError):
    """The folder holds symlinks to files outside it: publishing would upload those files."""


def ignore_patterns_for(kind: str) -> list[str]:
    """What never leaves the folder: run bookkeeping (``.waon/``...) and huggingface_hub's defaults."""
    return [*HUB_IGNORE_PATTERNS, *HF_DEFAULT_IGNORE_PATTERNS]


def allow_patterns_for(kind: str) -> list[str] | None:
    """What may leave the folder (None: anything not ignored). A dataset: only the dataset's files."""
    return list(DATASET_ALLOW_PATTERNS) if kind == "dataset" else None


def files_to_upload(folder: str | Path, ignore_patterns: list[str],
                    allow_patterns: list[str] | None = None) -> list[tuple[str, int]]:
    """``(path in repo, size in bytes)`` of the files ``upload_folder`` would send, same filters.

    Raises :class:`UnsafeLinkError` when one of them is reached through a symlink that leads out of
    the folder (listing all of them), before anything is uploaded.
    """
    folder = Path(folder).expanduser().resolve()
    rel = {p.relative_to(folder).as_posix(): p for p in sorted(folder.glob("**/*")) if p.is_file()}
    kept = list(filter_repo_objects(rel.keys(), allow_patterns=allow_patterns, ignore_patterns=ignore_patterns))
    outside = [(r, rel[r].resolve()) for r in kept if not rel[r].resolve().is_relative_to(folder)]
    if outside:
        shown = ", ".join(f"{r} -> {target}" for r, target in outside[:5])
        raise UnsafeLinkError(f"{folder}: refusing to publish {len(outside)} symlink(s) that lead outside the "
                              f"folder ({shown}); nothing was uploaded. Remove them, or copy the files in")
    return [(r, rel[r].stat().st_size) for r in kept]


def upload_folder_to_hub(folder: str | Path, repo_id: str, repo_type: str, *, private: bool = False,
                         api=None, commit_message: str | None = None, kind: str | None = None):
    """Create the repo (if needed) and upload ``folder`` with the bookkeeping files left out.

    ``api`` defaults to ``huggingface_hub.HfApi()``, which finds the token itself; pass a stand-in
    to test without network. ``kind`` (default ``repo_type``): ``dataset``, ``model`` or ``benchmark``
    (a dataset repo, any file). The same filters as :func:`files_to_upload`, which is checked first.
    """
    kind = kind or repo_type
    files_to_upload(folder, ignore_patterns_for(kind), allow_patterns_for(kind))  # refuses unsafe links first
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    logger.info("uploading %s to %s (%s)", folder, repo_id, repo_type)
    return url, api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
        ignore_patterns=ignore_patterns_for(kind),  # a fresh list: upload_folder appends to it
        allow_patterns=allow_patterns_for(kind),
        commit_message=commit_message or f"Upload {repo_type} with waon_hf",
    )


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
