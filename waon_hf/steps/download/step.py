"""The ``download`` step: :class:`DownloadImages`, a :class:`~waon_hf.steps.base.MapStep` over a ``url`` column.

Each ``process_batch`` call downloads its batch concurrently (asyncio + aiohttp, an event loop and an
HTTP session per call, so nothing open survives pickling) and adds one value per row to each of
:data:`~waon_hf.steps.download.statuses.OUTPUT_COLUMNS`. A failure is a value, not an exception:
every row gets a ``status`` from the closed set and a human-readable ``error``; failed rows have null
``image``, sizes and ``sha256``. Statuses, request policy, consent, SSRF guard and image handling:
``docs/download.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import datasets

from waon_hf.stats import Stats
from waon_hf.steps.base import Batch, MapStep, register
from waon_hf.steps.download.fetcher import Fetcher, interleaved_by_host
from waon_hf.steps.download.guard import address_allowed
from waon_hf.steps.download.hosts import HostState
from waon_hf.steps.download.resize import ENCODERS, INTERPOLATIONS, RESIZE_MODES, ImageOptions, transcode
from waon_hf.steps.download.robots import DEFAULT_USER_AGENT, RobotsRules, user_agent_token, x_robots_refuses
from waon_hf.steps.download.statuses import OUTPUT_COLUMNS, failure_row, retryable

logger = logging.getLogger(__name__)

HOST_STATS_TOP = 20  # hosts (most requests first) whose outcomes go into the stage's stats, per apply call


@register
@dataclasses.dataclass
class DownloadImages(MapStep):
    """Download the images of ``column`` and add :data:`OUTPUT_COLUMNS` (policy: ``docs/download.md``).

    Columns in: ``column`` (default ``url``). Columns out (added; the input columns are kept):
    ``image`` (``datasets.Image``, embedded re-encoded bytes), ``status``, ``error`` (strings),
    ``width``, ``height``, ``original_width``, ``original_height`` (float64, WAON's dtype) and ``sha256`` (hex
    SHA-256 of the stored bytes); all but ``status``/``error`` are null on failure.
    """

    name = "download"
    spill_to_disk = True  # a shard's images would otherwise all sit in memory (about 20 KB each at 256 px)
    column: str = "url"
    # image
    image_size: int = 256
    resize_mode: str = "keep_ratio"
    resize_only_if_bigger: bool = False
    downscale_interpolation: str = "area"
    upscale_interpolation: str = "lanczos"
    encode_format: str = "jpeg"
    encode_quality: int = 95
    max_pixels: int = 89_478_485  # Pillow's own default limit
    max_bytes: int = 20 * 1024 * 1024
    # network
    concurrency: int = 64
    per_host: int | None = None  # a fixed cap of requests in flight per host; None: the adaptive limit below
    per_host_start: int = 4  # adaptive: every host starts at this many requests in flight...
    per_host_max: int = 64  # ...and its limit moves between 1 and this with what the host answers
    per_host_rate: float | None = None
    timeout_connect: float = 5.0
    timeout_read: float = 10.0
    timeout_total: float = 20.0
    batch_timeout_s: float | None = None  # None: derived from the batch size, see batch_deadline()
    max_redirects: int = 5
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 10.0
    verify_tls: bool = True
    dns_ttl_s: float = 300.0  # DNS answers are kept this long per process (across batches)
    decode_threads: int = 2
    # politeness, consent, safety
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    respect_x_robots_tag: bool = True
    respect_crawl_delay: bool = True
    max_crawl_delay: float = 10.0  # a longer Crawl-delay is shortened to this
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()
    # archives
    warc_sources: tuple[str, ...] = ()
    offline: bool = False

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode {self.resize_mode!r} not in {sorted(RESIZE_MODES)}")
        for name in (self.downscale_interpolation, self.upscale_interpolation):
            if name not in INTERPOLATIONS:
                raise ValueError(f"interpolation {name!r} not in {sorted(INTERPOLATIONS)}")
        if self.encode_format not in ENCODERS:
            raise ValueError(f"encode_format {self.encode_format!r} not in {sorted(ENCODERS)}")
        for name in ("image_size", "concurrency", "per_host_start", "per_host_max", "max_bytes", "max_pixels",
                     "decode_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.per_host is not None and self.per_host < 1:
            raise ValueError("per_host must be >= 1 (or None for the adaptive per-host limit)")
        if self.per_host_start > self.per_host_max:
            raise ValueError(f"per_host_start ({self.per_host_start}) must not exceed per_host_max "
                             f"({self.per_host_max})")
        if self.retries < 0 or self.max_redirects < 0:
            raise ValueError("retries and max_redirects must be >= 0")
        if not self.max_crawl_delay >= 0:
            raise ValueError("max_crawl_delay must be >= 0")
        self.warc_sources = tuple(self.warc_sources)
        self.allowed_networks = tuple(self.allowed_networks)
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)

    # -- configuration helpers ----------------------------------------------------------------

    def output_features(self) -> dict[str, Any]:
        size = datasets.Value("float64")  # WAON's published dtype, so our rows and WAON's concatenate
        return {"image": datasets.Image(), "status": datasets.Value("string"), "error": datasets.Value("string"),
                "width": size, "height": size, "original_width": size, "original_height": size,
                "sha256": datasets.Value("string")}

    def adaptive_max(self) -> int | None:
        """The adaptive per-host limit's maximum, or None when ``per_host`` fixes the limit."""
        return self.per_host_max if self.per_host is None else None

    def host_start(self) -> int:
        """Requests in flight a host starts with (for good, when ``per_host`` is fixed)."""
        return self.per_host_start if self.per_host is None else self.per_host

    def image_options(self) -> ImageOptions:
        return ImageOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ImageOptions)})

    def agent_token(self) -> str:
        return user_agent_token(self.user_agent)

    def address_allowed(self, address: str) -> bool:
        """The SSRF guard's predicate (``allow_private`` aside)."""
        return address_allowed(address, self._networks)

    def batch_deadline(self, n_urls: int) -> float:
        """Seconds one ``process_batch`` call may take: ``batch_timeout_s``, or a bound on honest work
        (every slot busy ``timeout_total`` per URL, plus one URL's retries and back-offs)."""
        if self.batch_timeout_s is not None:
            return self.batch_timeout_s
        waves = math.ceil(n_urls / self.concurrency) if n_urls else 0
        one_url = (self.retries + 1) * self.timeout_total + self.retries * self.max_backoff_s
        return waves * self.timeout_total + one_url + 2 * self.timeout_total

    # -- lazily built, per process (dropped from pickles) ---------------------------------------

    def robots_cache(self) -> dict[str, RobotsRules]:
        """``origin -> RobotsRules`` of this instance in this process (shared by its batches)."""
        cache = self.__dict__.get("_cache_robots")
        if cache is None:
            cache = self.__dict__["_cache_robots"] = {}
        return cache

    def dns_cache(self) -> dict:
        """Raw DNS answers of this instance in this process (filtered by the SSRF guard on every use)."""
        cache = self.__dict__.get("_cache_dns")
        if cache is None:
            cache = self.__dict__["_cache_dns"] = {}
        return cache

    def host_states(self) -> dict[str, HostState]:
        """``origin -> HostState`` of this instance in this process: adaptive limits, the end of the last
        request (``Crawl-delay`` holds across batches) and per-host outcomes."""
        states = self.__dict__.get("_cache_host_states")
        if states is None:
            states = self.__dict__["_cache_host_states"] = {}
        return states

    def archive(self):
        """The index of ``warc_sources`` (built once per process), or None without them."""
        if not self.warc_sources:
            return None
        index = self.__dict__.get("_cache_archive")
        if index is None:
            from waon_hf.sources.warc_images import WarcImageIndex

            index = self.__dict__["_cache_archive"] = WarcImageIndex.build(self.warc_sources)
        return index

    def from_archive(self, url: str) -> dict[str, Any]:
        """The output row for ``url`` served from ``warc_sources`` (no network)."""
        record = self.archive().get(url)
        if record is None:
            return failure_row("not_in_archive", "not in warc_sources")
        if self.respect_x_robots_tag and record.x_robots_tag and x_robots_refuses(record.x_robots_tag,
                                                                                   self.agent_token()):
            return failure_row("x_robots_tag", f"X-Robots-Tag: {'; '.join(record.x_robots_tag)} (archived)")
        if len(record.data) > self.max_bytes:
            return failure_row("too_large", f"archived body of {len(record.data)} bytes > max_bytes")
        return transcode(record.data, self.image_options())

    def host_outcomes(self, top: int = HOST_STATS_TOP) -> dict[str, dict[str, int]]:
        """``origin -> counters`` (requests, ok, http_429, http_5xx, timeouts, latency_ms_total, answered,
        final_limit) of the ``top`` hosts with the most requests in this process since the last ``apply``."""
        busiest = sorted((kv for kv in self.host_states().items() if kv[1].requests), key=lambda kv: -kv[1].requests)
        return {key: state.outcomes(self.per_host if self.per_host is not None else max(1, int(state.limit)))
                for key, state in busiest[:top]}

    def report_hosts(self, stats: Stats | None, stage: str) -> None:
        """Add :meth:`host_outcomes` to ``stats`` as ``<stage>_hosts.<origin>.<counter>`` and start afresh."""
        if stats is not None:
            for key, counts in self.host_outcomes().items():
                stats.add_stage(f"{stage}_hosts", {f"{key}.{name}": n for name, n in counts.items()})
        for state in self.host_states().values():
            state.reset_outcomes()

    # -- running --------------------------------------------------------------------------------

    def fetch(self, urls: list[str]) -> list[dict[str, Any]]:
        """Output rows for ``urls`` (same order); identical URLs are fetched once."""
        if not urls:
            return []
        return _run_coroutine(lambda: self._fetch_all(urls))

    async def _fetch_all(self, urls: list[str]) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(urls))
        deadline = self.batch_deadline(len(unique))
        executor = concurrent.futures.ThreadPoolExecutor(self.decode_threads, thread_name_prefix="waon-decode")
        try:
            fetcher = Fetcher(self, executor)
            try:
                fetcher.expect(unique)
                tasks = {url: asyncio.ensure_future(fetcher.download(url)) for url in interleaved_by_host(unique)}
                done, pending = await asyncio.wait(tasks.values(), timeout=deadline)
                # Cancel stragglers, and robots.txt fetches nobody waits for any more (left running,
                # they would fail on the closed session and cache a bogus "unreachable").
                stragglers = [*pending, *(f for f in fetcher.robots_pending.values() if not f.done())]
                for task in stragglers:
                    task.cancel()
                await asyncio.gather(*stragglers, return_exceptions=True)
            finally:
                await fetcher.close()
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        rows = {url: task.result() if task in done else failure_row("timeout", fetcher.late_error(url, deadline))
                for url, task in tasks.items()}
        return [rows[url] for url in urls]

    def finish(self, stats: Stats | None) -> None:
        self.report_hosts(stats, self.name)

    def apply_retry_failed(self, ds: datasets.Dataset, stats: Stats | None = None, *, num_proc: int | None = None,
                           batch_size: int = 1_000) -> datasets.Dataset:
        """:meth:`retry_failed` over a downloaded dataset (the ``waon download --retry-failed`` path)."""
        from waon_hf.steps.download.retry import RetryFailedDownloads

        return RetryFailedDownloads(download=self).apply(ds, stats, num_proc=num_proc, batch_size=batch_size)

    def process_batch(self, batch: Batch) -> Batch:
        rows = self.fetch(list(batch[self.column]))
        for name in OUTPUT_COLUMNS:
            batch[name] = [row[name] for row in rows]
        return batch

    # -- retrying failures ----------------------------------------------------------------------

    def retry_failed(self, batch: Batch) -> Batch:
        """Re-fetch the rows whose ``status`` is retryable; every other row is returned untouched.

        ``batch`` holds ``column`` and all :data:`OUTPUT_COLUMNS` (a previous run's output).
        """
        todo = [i for i, status in enumerate(batch["status"]) if retryable(status)]
        rows = self.fetch([batch[self.column][i] for i in todo])
        for name in OUTPUT_COLUMNS:
            values = list(batch[name])
            for i, row in zip(todo, rows, strict=True):
                values[i] = row[name]
            batch[name] = values
        return batch


def _run_coroutine(make: Callable[[], Any]) -> Any:
    """``asyncio.run(make())``, also from a thread that already runs an event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(make())
        except BaseException as e:  # re-raised in the caller's thread
            result["error"] = e

    thread = threading.Thread(target=target, name="waon-download")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
