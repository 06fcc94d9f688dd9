"""Outputs on object stores and other fsspec filesystems (``-o s3://bucket/waon/``, ``hf://...``).

The runner needs a local folder (DuckDB spill files, atomic renames, hard links), so a URL output
is built in a local work folder (``--work-dir``; default ``~/.cache/waon/work/<name>-<hash of the
URL>``, so the same command resumes there) and the finished dataset (``data/``, ``README.md``,
``stats.json``, ``pipeline.json``, ...; never ``.waon/`` or ``.waon-stages/``) is then copied to the
URL with fsspec (only the dataset's files, as `waon publish dataset`). The copy resumes: a file of
``data/`` already there with the same size is skipped
(the card and the JSON files, small and able to change without changing size, are always
rewritten), and data files of an earlier, differently sharded upload
are removed so the remote folder never mixes two runs. Data files go first and the card last, so a
reader that sees the new card sees complete data.

``hf://datasets/org/name`` goes through ``waon publish``'s upload (``HfApi.upload_folder``: few
commits, resumable) instead of one commit per file through ``HfFileSystem``.

With Ray workers on several machines, the work folder must be on storage they all mount (pass
``--work-dir /shared/...``): workers write their shards there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from pathlib import Path

from tqdm.auto import tqdm

from waon_hf.publish.upload import allow_patterns_for, files_to_upload, ignore_patterns_for, upload_folder_to_hub

logger = logging.getLogger(__name__)

_HF_DATASET = re.compile(r"^hf://datasets/(?P<repo>[^/@]+/[^/@]+)/?$")


def is_url(output: str | os.PathLike) -> bool:
    return "://" in str(output)


def default_work_dir(url: str) -> Path:
    """Where a URL output is built: stable for a given URL, so the same command resumes."""
    base = Path(os.environ.get("WAON_CACHE") or Path.home() / ".cache" / "waon") / "work"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", url.rstrip("/").rsplit("/", 1)[-1])[:60] or "out"
    return base / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def local_folder_for(output: str, work_dir: str | None = None) -> tuple[Path, str | None]:
    """``(folder the runner writes, URL to upload it to or None)`` for an ``-o`` value."""
    if not is_url(output):
        if work_dir:
            raise ValueError("--work-dir is for URL outputs (-o s3://..., hf://...); -o is already a folder")
        return Path(output), None
    if output.startswith("hf://"):
        hub_repo(output)
    else:
        import fsspec

        try:  # an unknown scheme or a missing backend (s3fs...) fails now, not after the run
            fsspec.core.url_to_fs(output)
        except ImportError as e:
            raise RuntimeError(f"-o {output}: {e}") from e
    folder = Path(work_dir) if work_dir else default_work_dir(output)
    logger.info("building %s in %s, uploaded when done", output, folder)
    return folder, output


@dataclasses.dataclass
class UploadReport:
    uploaded: int = 0
    skipped: int = 0
    removed: int = 0
    bytes_uploaded: int = 0

    def __str__(self) -> str:
        return (f"{self.uploaded} file(s) uploaded ({self.bytes_uploaded:,} bytes), {self.skipped} already there, "
                f"{self.removed} stale data file(s) removed")


def dataset_files(folder: Path) -> list[tuple[str, int]]:
    """The files of a dataset folder that make the published dataset, same filter as `waon publish`."""
    return files_to_upload(folder, ignore_patterns_for("dataset"), allow_patterns_for("dataset"))


def upload_dataset(folder: str | os.PathLike, url: str, *, fs=None, api=None) -> UploadReport:
    """Copy a finished dataset folder to ``url`` (any fsspec URL; ``hf://datasets/org/name`` via the Hub API)."""
    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} holds no finished dataset (no README.md)")
    files = dataset_files(folder)
    if url.startswith("hf://"):
        return _upload_to_hub(folder, url, files, api)
    if fs is None:
        import fsspec

        fs, root = fsspec.core.url_to_fs(url)
    else:
        root = fs._strip_protocol(url)
    root = root.rstrip("/")
    report = UploadReport()
    remote_data = {p for p in fs.glob(f"{root}/data/**") if not fs.isdir(p)} if fs.exists(f"{root}/data") else set()
    # data first, the card last: a reader that finds the new card finds its data
    ordered = sorted(files, key=lambda f: (f[0] == "README.md", not f[0].startswith("data/"), f[0]))
    with tqdm(total=sum(s for _, s in files), desc=f"upload to {url}", unit="B", unit_scale=True) as progress:
        for rel, size in ordered:
            target = f"{root}/{rel}"
            if rel.startswith("data/") and fs.exists(target) and fs.size(target) == size:
                report.skipped += 1
            else:
                fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                fs.put_file(str(folder / rel), target)
                report.uploaded += 1
                report.bytes_uploaded += size
            progress.update(size)
    for stale in sorted(remote_data - {f"{root}/{rel}" for rel, _ in files}):
        fs.rm(stale)
        report.removed += 1
    logger.info("%s: %s", url, report)
    return report


def _upload_to_hub(folder: Path, url: str, files: list[tuple[str, int]], api) -> UploadReport:
    upload_folder_to_hub(folder, hub_repo(url), "dataset", api=api)
    return UploadReport(uploaded=len(files), bytes_uploaded=sum(s for _, s in files))


def hub_repo(url: str) -> str:
    m = _HF_DATASET.match(url)
    if not m:
        raise ValueError(f"{url}: Hub outputs are hf://datasets/<org>/<name> (a whole dataset repo)")
    return m.group("repo")
