"""Common Crawl: crawl ids, their WARC listings, and turning CLI inputs into shard sources.

A crawl id (``CC-MAIN-2025-18``) expands to the WARC files of its ``warc.paths.gz`` listing, read
from ``https://data.commoncrawl.org/`` (override with ``--cc-base-url`` or ``WAON_CC_BASE_URL``,
e.g. for a mirror). A slice is picked with ``--limit-files`` and ``--num-shards N --shard-index I``
(file ``k`` belongs to shard ``k % N``, so a Slurm array of N tasks covers the crawl once).
"""

from __future__ import annotations

import glob
import gzip
import os
import re
from dataclasses import dataclass

from waon_hf.sources.remote import COMMONCRAWL_HTTPS, RemoteFileError, RetryPolicy, open_binary, redact_url

CRAWL_ID_RE = re.compile(r"^CC-MAIN-\d{4}-\d{2}$")
_CRAWL_IN_PATH_RE = re.compile(r"(CC-MAIN-\d{4}-\d{2})")


class CrawlNotFoundError(RemoteFileError):
    pass


@dataclass(frozen=True)
class SourceFile:
    """One input file = one shard of work."""

    location: str  # local path or URL, as it will be opened (it may hold credentials: never record it)
    crawl: str  # crawl id, or "" when unknown

    @property
    def public_location(self) -> str:
        """The location without credentials (userinfo, signature/token parameters): what is recorded."""
        return redact_url(self.location)

    def public(self) -> dict:
        """The source as recorded in a manifest or a shard's record."""
        return {"location": self.public_location, "crawl": self.crawl}


def cc_base_url(override: str | None = None) -> str:
    return (override or os.environ.get("WAON_CC_BASE_URL") or COMMONCRAWL_HTTPS).rstrip("/") + "/"


def list_crawl_warcs(crawl_id: str, base_url: str | None = None, policy: RetryPolicy | None = None) -> list[str]:
    """URLs of every WARC file of a crawl, in listing order (read with the remote reads' retry policy;
    a host that does not resolve fails at once, naming the offline alternatives)."""
    base = cc_base_url(base_url)
    listing = f"{base}crawl-data/{crawl_id}/warc.paths.gz"
    try:
        with open_binary(listing, policy) as raw, gzip.open(raw, "rt", encoding="utf-8") as f:
            paths = [line.strip() for line in f if line.strip()]
    except RemoteFileError as e:
        if "HTTP 404" in str(e) or "HTTP 403" in str(e):
            raise CrawlNotFoundError(
                f"crawl {crawl_id!r} not found: no listing at {redact_url(listing)} ({e}). "
                "Crawl ids look like CC-MAIN-2025-18; see https://commoncrawl.org/overview for the list."
            ) from e
        raise
    return [p if "://" in p else base + p.lstrip("/") for p in paths]


def select_files(items: list, limit_files: int | None = None, num_shards: int = 1, shard_index: int = 0) -> list:
    """The slice of a file list this job works on (shard slice first, then the limit)."""
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"--shard-index must be in [0, {num_shards}) and --num-shards >= 1")
    picked = [item for k, item in enumerate(items) if k % num_shards == shard_index]
    return picked[:limit_files] if limit_files is not None else picked


def crawl_of(location: str) -> str:
    m = _CRAWL_IN_PATH_RE.search(location)
    return m.group(1) if m else ""


def resolve_inputs(
    inputs: list[str], *, limit_files: int | None = None, num_shards: int = 1, shard_index: int = 0,
    base_url: str | None = None,
) -> list[SourceFile]:
    """Expand crawl ids, globs and URLs into the ordered list of files to process."""
    files: list[SourceFile] = []
    for item in inputs:
        if CRAWL_ID_RE.match(item):
            files += [SourceFile(url, item) for url in list_crawl_warcs(item, base_url)]
        elif "://" in item:
            files.append(SourceFile(item, crawl_of(item)))
        else:
            matches = sorted(glob.glob(item)) if glob.has_magic(item) else [item]
            if not matches:
                raise FileNotFoundError(f"no file matches {item!r}")
            for path in matches:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"input {path!r} is not a file, an http(s)/s3 URL or a crawl id")
                files.append(SourceFile(path, crawl_of(os.path.basename(path))))
    return select_files(files, limit_files, num_shards, shard_index)
