"""Images of URL-only benchmarks: fetched once through the project's downloader, kept in a cache.

WAON-Bench and Recruit publish a ``url`` per row and no image. :func:`hydrate` turns a list of URLs
into one :class:`FetchedImage` per URL, using

* :class:`ImageCache`, a content-addressed folder under the Hugging Face datasets cache
  (``$HF_DATASETS_CACHE``, else ``$HF_HOME/datasets``, else ``~/.cache/huggingface/datasets``; or
  ``cache_dir``): ``objects/ab/<sha256>.jpg`` holds the stored bytes, ``urls/cd/<sha256(url)>.json``
  what became of a URL (its status, and the object's sha256 when ``ok``). Final failures (404,
  robots, not an image...) are remembered too, so a second evaluation sends no request at all;
  retryable ones (timeouts, 5xx, 429) are asked again next time.
* :class:`~waon_hf.steps.download.DownloadImages` for everything not cached: the same robots.txt,
  X-Robots-Tag, SSRF guard, per-host limits, retries and statuses as the images stage. The images
  are re-encoded under :data:`BENCH_IMAGE_OPTIONS` (recorded in the manifest), large enough for
  every model's preprocessor (the smaller side at most 512 px, never upscaled).

A *manifest* (:func:`write_manifest`) lists ``url, sha256, status`` for every URL of a run; given
back (``manifest=``) it fixes the image set: rows it lists as failed stay missing, rows it lists as
``ok`` must be the very same bytes (a cached or re-fetched image whose sha256 differs is an error).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from waon_hf.io import atomic_write, write_json_atomic

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = "waon_hf/benchmark-image-manifest/1"
# The download step's image options for benchmark images (the rest of its settings are its defaults).
BENCH_IMAGE_OPTIONS = {"image_size": 512, "resize_mode": "keep_ratio", "resize_only_if_bigger": True,
                       "encode_format": "jpeg", "encode_quality": 95}
CACHE_SUBDIR = "waon_hf/benchmark-images/keep_ratio-512-jpeg95"
NOT_CACHED = "not_cached"  # --offline and the URL was never fetched


class ManifestMismatchError(RuntimeError):
    """The image set on disk (or on the web) is not the one a manifest records."""


@dataclass(frozen=True)
class FetchedImage:
    url: str
    status: str
    sha256: str | None = None
    error: str = ""
    path: Path | None = None  # the cached file when status == "ok"

    def manifest_entry(self) -> dict:
        return {"url": self.url, "sha256": self.sha256, "status": self.status}


def default_cache_dir() -> Path:
    """The benchmark image cache inside the Hugging Face datasets cache (read from the environment now)."""
    datasets_cache = os.environ.get("HF_DATASETS_CACHE")
    if not datasets_cache:
        hf_home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        datasets_cache = os.path.join(hf_home, "datasets")
    return Path(datasets_cache) / CACHE_SUBDIR


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


class ImageCache:
    """A content-addressed image store plus a per-URL record of what happened (see the module docstring)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def object_path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / f"{sha256}.jpg"

    def _record_path(self, url: str) -> Path:
        key = _url_key(url)
        return self.root / "urls" / key[:2] / f"{key}.json"

    def lookup(self, url: str) -> FetchedImage | None:
        """The cached outcome of ``url``: an ``ok`` image whose file exists, or a final failure; else None."""
        path = self._record_path(url)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if record.get("url") != url:  # a hash collision or a foreign file: not ours
            return None
        if record["status"] == "ok":
            obj = self.object_path(record["sha256"])
            if not obj.is_file():
                return None
            return FetchedImage(url, "ok", record["sha256"], "", obj)
        return FetchedImage(url, record["status"], None, record.get("error", ""))

    def store(self, url: str, row: dict, *, remember_failure: bool) -> FetchedImage:
        """Record one download row (``DownloadImages.fetch`` output); an ``ok`` row's bytes go to ``objects/``."""
        status = row["status"]
        if status == "ok":
            data = row["image"]["bytes"]
            sha = hashlib.sha256(data).hexdigest()
            obj = self.object_path(sha)
            if not obj.is_file():
                obj.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(obj) as f:
                    f.write(data)
            result = FetchedImage(url, "ok", sha, "", obj)
        else:
            result = FetchedImage(url, status, None, row.get("error") or "")
            if not remember_failure:
                return result
        record = self._record_path(url)
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, {"url": url, "status": status, "sha256": result.sha256, "error": result.error})
        return result

    def verify(self, sha256: str) -> bool | None:
        """True if the object exists and hashes to its name, False if it differs, None if absent."""
        path = self.object_path(sha256)
        if not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def make_downloader(*, allow_private: bool = False, **overrides):
    """The download step configured for benchmark images (``allow_private`` only for local test servers)."""
    from waon_hf.steps.download import DownloadImages

    return DownloadImages(**{**BENCH_IMAGE_OPTIONS, "allow_private": allow_private, **overrides})


def read_manifest(path: str | os.PathLike) -> dict[str, dict]:
    """``{url: {"url", "sha256", "status"}}`` from a manifest written by :func:`write_manifest`."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path}: not a benchmark image manifest (format {doc.get('format')!r}, "
                         f"expected {MANIFEST_FORMAT!r})")
    return {entry["url"]: entry for entry in doc["images"]}


def write_manifest(path: str | os.PathLike, images: list[FetchedImage], *, download_options: dict) -> None:
    """One entry per distinct URL, in first-seen order."""
    seen: dict[str, dict] = {}
    for img in images:
        seen.setdefault(img.url, img.manifest_entry())
    counts = Counter(e["status"] for e in seen.values())
    write_json_atomic(path, {"format": MANIFEST_FORMAT, "download_options": download_options,
                             "statuses": dict(sorted(counts.items())), "images": list(seen.values())})


def hydrate(urls: list[str], *, cache: ImageCache, downloader=None, offline: bool = False,
            manifest: dict[str, dict] | None = None) -> list[FetchedImage]:
    """One :class:`FetchedImage` per URL (same order); only what the cache lacks is requested.

    ``offline``: nothing is requested; URLs not in the cache get status ``not_cached``.
    ``manifest``: the set is fixed by it (see the module docstring); a URL it does not list is an error.
    """
    from waon_hf.steps.download import retryable

    results: dict[str, FetchedImage] = {}
    todo: list[str] = []
    for url in dict.fromkeys(urls):
        if manifest is not None:
            entry = manifest.get(url)
            if entry is None:
                raise ManifestMismatchError(f"{url}: not in the manifest (a different benchmark or version?)")
            if entry["status"] != "ok":
                results[url] = FetchedImage(url, entry["status"], None, "as recorded in the manifest")
                continue
            check = cache.verify(entry["sha256"])
            if check is False:
                raise ManifestMismatchError(f"{url}: cached file {cache.object_path(entry['sha256'])} does not hash "
                                            f"to the manifest's sha256 {entry['sha256']}")
            if check:
                results[url] = FetchedImage(url, "ok", entry["sha256"], "", cache.object_path(entry["sha256"]))
                continue
        else:
            hit = cache.lookup(url)
            if hit is not None:
                results[url] = hit
                continue
        if offline:
            results[url] = FetchedImage(url, NOT_CACHED, None, "offline and not in the cache")
        else:
            todo.append(url)
    if todo:
        if downloader is None:
            downloader = make_downloader()
        logger.info("fetching %d benchmark image(s) into %s", len(todo), cache.root)
        for url, row in zip(todo, downloader.fetch(todo), strict=True):
            got = cache.store(url, row, remember_failure=not retryable(row["status"]))
            if manifest is not None and manifest[url]["sha256"] != got.sha256:
                raise ManifestMismatchError(f"{url}: fetched image (status {got.status}, sha256 {got.sha256}) is "
                                            f"not the manifest's {manifest[url]['sha256']}: the image changed")
            results[url] = got
    return [results[url] for url in urls]


def fetch_summary(images: list[FetchedImage], rows_of: list[int] | None = None) -> dict:
    """The ``images`` entry of a results document: counts per status and every row not fetched."""
    rows = rows_of if rows_of is not None else list(range(len(images)))
    unfetched = [{"row": r, **{k: v for k, v in asdict(img).items() if k in ("url", "status", "error")}}
                 for r, img in zip(rows, images, strict=True) if img.status != "ok"]
    counts = Counter(img.status for img in images)
    return {"source": "fetched from url", "n_rows": len(images), "n_fetched": counts.get("ok", 0),
            "statuses": dict(sorted(counts.items())), "unfetched": unfetched}


def hydrate_task(task, *, cache: ImageCache, downloader=None, offline: bool = False,
                 manifest: dict[str, dict] | None = None) -> list[FetchedImage]:
    """Fetch the images of a URL-only task in place (``task.images`` reads the cached files, and
    ``task.fetched`` says what could not be fetched); returns the fetched images, ``[]`` if the
    task has images of its own."""
    if not task.images.url_only:
        return []
    urls = [u if isinstance(u, str) else "" for u in task.images.urls(range(len(task.images)))]
    fetched = hydrate(urls, cache=cache, downloader=downloader, offline=offline, manifest=manifest)
    task.images = task.images.with_files([(f.path, None) if f.status == "ok" else (None, f.status) for f in fetched])
    task.fetched = fetch_summary(fetched)
    logger.info("%s: %d of %d images available (%s)", task.name, task.fetched["n_fetched"], len(fetched),
                task.fetched["statuses"])
    return fetched
