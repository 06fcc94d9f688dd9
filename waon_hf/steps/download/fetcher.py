"""The network side of the download step: one :class:`Fetcher` per ``process_batch`` call.

It owns the aiohttp session (guarded, caching resolver; no proxies, no cookies), the per-host and
global slots, retries with back-off, hand-followed redirects, robots.txt fetching and caching, the
header checks done before a body is read, and the reports of each answer to its host's adaptive
limit. The request policy: ``docs/download.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from waon_hf.steps.download.dns import CachingResolver
from waon_hf.steps.download.guard import BlockedAddressError, GuardedResolver, ip_literal
from waon_hf.steps.download.hosts import CLEAN, ERROR, THROTTLED, HostSlots, LoopLag, host_state
from waon_hf.steps.download.resize import transcode
from waon_hf.steps.download.robots import ROBOTS_CACHE_MAX, ROBOTS_MAX_BYTES, RobotsRules, x_robots_refuses
from waon_hf.steps.download.schedule import PriorityGate
from waon_hf.steps.download.statuses import Failure, failure_row, http_failure, retry_after_seconds, retryable

if TYPE_CHECKING:
    from waon_hf.steps.download.step import DownloadImages

logger = logging.getLogger(__name__)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class Fetcher:
    """Downloads the URLs of one batch; :meth:`download` never raises (failures are rows)."""

    def __init__(self, step: DownloadImages, executor: concurrent.futures.Executor):
        import aiohttp

        self.step = step
        self.opts = step.image_options()
        self.token = step.agent_token()
        self.executor = executor
        self.loop = asyncio.get_running_loop()
        self.global_slots = PriorityGate(step.concurrency)  # the host with the most work left first
        # Bodies read but not yet decoded hold one of these: the network slots are freed when the body
        # is in, and this bounds what waits for a decode thread (memory) when decoding is the bottleneck.
        self.undecoded = asyncio.Semaphore(2 * step.concurrency)
        self.hosts: dict[str, HostSlots] = {}
        self.url_hosts: dict[str, HostSlots] = {}  # the batch's URLs (see expect) -> their hosts
        self.states = step.host_states()
        self.robots = step.robots_cache()
        self.robots_pending: dict[str, asyncio.Future] = {}
        self.archive = step.archive()
        self.lag = LoopLag()
        resolver = CachingResolver(step.dns_cache(), step.dns_ttl_s)
        connector = aiohttp.TCPConnector(
            resolver=resolver if step.allow_private else GuardedResolver(step.address_allowed, inner=resolver),
            limit=step.concurrency, limit_per_host=0, ttl_dns_cache=300, ssl=step.verify_tls,
        )
        self.http = aiohttp.ClientSession(
            connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=step.timeout_total, sock_connect=step.timeout_connect,
                                          sock_read=step.timeout_read),
            headers={"User-Agent": step.user_agent, "Accept": "image/*,*/*;q=0.8", "Accept-Encoding": "identity"},
        )
        if step.adaptive_max() is not None:  # only adaptive limits judge latencies (started last: close() stops it)
            self.lag.start()

    async def close(self) -> None:
        await self.lag.stop()
        await self.http.close()

    # -- one URL --------------------------------------------------------------------------------

    def expect(self, urls: list[str]) -> None:
        """Count the batch's URLs per host (the hosts' ``pending``, which orders the global slots)."""
        for url in urls:
            with contextlib.suppress(Failure):
                host = self.url_hosts[url] = self.host(origin(self._target(url)))
                host.pending += 1

    async def download(self, url: str) -> dict[str, Any]:
        try:
            return await self._download(url)
        finally:
            host = self.url_hosts.pop(url, None)
            if host is not None:
                host.pending -= 1

    async def _download(self, url: str) -> dict[str, Any]:
        try:
            if self.archive is not None and url in self.archive:
                return await self.loop.run_in_executor(self.executor, self.step.from_archive, url)
            if self.step.offline:
                raise Failure("not_in_archive", "offline and not in warc_sources")
            return await self._with_retries(url)
        except Failure as f:
            return failure_row(f.status, f.error)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            logger.exception("unexpected error downloading %s", url)
            return failure_row("unexpected_error", f"{type(e).__name__}: {e}")

    async def _with_retries(self, url: str) -> dict[str, Any]:
        step = self.step
        for attempt in range(step.retries + 1):
            try:
                return await self._attempt(url)
            except Failure as f:
                if attempt == step.retries or not retryable(f.status) or f.final:
                    raise
                delay = step.backoff_s * (2 ** attempt) * random.uniform(0.8, 1.2)
                if f.retry_after is not None:
                    delay = max(delay, f.retry_after)
                if delay > step.max_backoff_s:
                    raise
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, url: str) -> dict[str, Any]:
        current = url
        for _ in range(self.step.max_redirects + 1):
            target = self._target(current)
            if self.step.respect_robots:
                await self._check_robots(target)
            async with self._slot(target):
                await self.undecoded.acquire()
                try:
                    location, data = await self._get(target)
                except BaseException:
                    self.undecoded.release()
                    raise
            try:
                if location is None:  # decoded with the host's and the global slot already handed on
                    return await self.loop.run_in_executor(self.executor, transcode, data, self.opts)
            finally:
                self.undecoded.release()
            current = location
        raise Failure("too_many_redirects", f"more than {self.step.max_redirects} redirects (last: {current})")

    def _target(self, url: str):
        """Parse ``url``; refuse what is not http(s) or is an IP literal the guard refuses."""
        from yarl import URL

        if not url or not isinstance(url, str):
            raise Failure("invalid_url", "empty url")
        try:
            target = URL(url.strip())
            host = target.raw_host
        except (ValueError, TypeError, UnicodeError) as e:
            raise Failure("invalid_url", f"unparsable url: {e}") from None
        if target.scheme not in ("http", "https") or not host:
            raise Failure("invalid_url", f"not an absolute http(s) url: {url[:200]}")
        literal = ip_literal(host)
        if literal is not None and not self.step.allow_private and not self.step.address_allowed(literal):
            raise Failure("blocked_private_address", f"{literal} is not a public address")
        return target

    def host(self, key: str) -> HostSlots:
        """The slots of origin ``key`` in this batch."""
        host = self.hosts.get(key)
        if host is None:
            step = self.step
            start = step.host_start()
            host = self.hosts[key] = HostSlots(host_state(self.states, key, start), start, step.per_host_rate,
                                               step.adaptive_max(), step.max_backoff_s)
        return host

    def late_error(self, url: str, deadline: float) -> str:
        """The ``error`` of a row still unfinished at the batch deadline."""
        message = f"batch deadline of {deadline:.0f}s exceeded"
        try:
            host = self.hosts.get(origin(self._target(url)))
        except Failure:
            host = None
        if host is not None and host.crawl_delay:
            message += f" (the host asks for Crawl-delay: {host.crawl_delay:g}s)"
        return message

    @contextlib.asynccontextmanager
    async def _slot(self, target):
        host = self.host(origin(target))
        async with host.slot(), self.global_slots.slot(host.work_left()):  # the host's slot first
            yield

    async def _request(self, target, body_limit: int, check_headers: Callable | None = None, truncate: bool = False):
        """GET ``target`` -> (status, headers, redirect location or None, body); raises :class:`Failure`."""
        import aiohttp

        host = self.host(origin(target))
        started = time.monotonic()
        answered = False  # headers reported to the host: a later failure (a slow body) is not a second request
        try:
            async with asyncio.timeout(self.step.timeout_total):
                async with self.http.get(target, allow_redirects=False) as resp:
                    _observe(host, resp, started, self.lag.lag_s)
                    answered = True
                    if resp.status in REDIRECT_CODES and resp.headers.get("Location"):
                        try:
                            location = urljoin(str(target), resp.headers["Location"])
                        except ValueError as e:
                            raise Failure("invalid_url", f"bad redirect location: {e}") from None
                        return resp.status, resp.headers, location, b""
                    if check_headers is not None:
                        check_headers(resp)
                    return resp.status, resp.headers, None, await _read_capped(resp, body_limit, truncate)
        except Failure:
            raise
        except TimeoutError as e:
            if not answered:
                host.observe(THROTTLED, started, None)
            raise Failure("timeout", f"{type(e).__name__} after at most {self.step.timeout_total}s") from None
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, BlockedAddressError):
                raise Failure("blocked_private_address", str(e.os_error)) from None
            host.observe(ERROR, started, None)  # no connection: never answered
            raise Failure("connection_error", f"{type(e).__name__}: {e}") from None
        except aiohttp.InvalidURL as e:
            raise Failure("invalid_url", f"{type(e).__name__}: {e}") from None
        except (aiohttp.ClientError, OSError, UnicodeError) as e:
            if not answered:
                host.observe(ERROR, started, None)
            raise Failure("connection_error", f"{type(e).__name__}: {e}") from None

    async def _get(self, target) -> tuple[str | None, bytes]:
        """(redirect location, b"") or (None, body) for an image request."""
        status, headers, location, body = await self._request(target, self.step.max_bytes, self._check_image_response)
        return location, body

    def _check_image_response(self, resp) -> None:
        if not 200 <= resp.status < 300 or resp.status in (204, 205):
            raise http_failure(resp.status, resp.reason, resp.headers)
        if self.step.respect_x_robots_tag:
            tags = resp.headers.getall("X-Robots-Tag", [])
            if tags and x_robots_refuses(tags, self.token):
                raise Failure("x_robots_tag", f"X-Robots-Tag: {'; '.join(tags)}")
        length = resp.content_length
        if length is not None and length > self.step.max_bytes:
            raise Failure("too_large", f"Content-Length {length} > max_bytes={self.step.max_bytes}")

    # -- robots.txt -----------------------------------------------------------------------------

    async def _check_robots(self, target) -> None:
        key = origin(target)
        rules = self.robots.get(key)
        if rules is None:
            pending = self.robots_pending.get(key)
            if pending is None:
                pending = self.robots_pending[key] = asyncio.ensure_future(self._fetch_robots(key))
            rules = await asyncio.shield(pending)
        if rules.unreachable:
            raise Failure(rules.status, f"{key}/robots.txt: {rules.unreachable}", final=True)
        if self.step.respect_crawl_delay:
            delay = rules.crawl_delay(self.token)
            if delay:
                self.host(key).crawl_delay = min(delay, self.step.max_crawl_delay)
        if not rules.allows(self.token, str(target)):
            raise Failure("robots_disallowed", f"{key}/robots.txt disallows {self.token}")

    async def _fetch_robots(self, key: str) -> RobotsRules:
        rules = await self._robots_rules(key + "/robots.txt")
        if len(self.robots) >= ROBOTS_CACHE_MAX:  # forget the oldest host (dicts keep insertion order)
            del self.robots[next(iter(self.robots))]
        self.robots[key] = rules
        return rules

    async def _robots_rules(self, url: str) -> RobotsRules:
        for _ in range(self.step.max_redirects + 1):
            try:
                target = self._target(url)
                async with self._slot(target):
                    code, _, location, body = await self._request(target, ROBOTS_MAX_BYTES, _robots_headers,
                                                                     truncate=True)
            except Failure as f:
                if f.status in ("invalid_url", "blocked_private_address", "http_other"):
                    return RobotsRules()  # unavailable: as if there were none
                if f.status in ("http_403", "http_404", "http_4xx"):
                    return RobotsRules()
                if f.status in ("timeout", "connection_error"):  # the host is down: say so
                    return RobotsRules(unreachable=f.error, status=f.status)
                return RobotsRules(unreachable=f.error)  # 429, 5xx, too large
            if location is None:
                if 200 <= code < 300:
                    return RobotsRules.parse(body.decode("utf-8", "replace"))
                return RobotsRules()
            url = location
        return RobotsRules()  # too many redirects: unavailable (RFC 9309 2.3.1.2)


def origin(target) -> str:
    """``scheme://host:port`` (no credentials): the key of per-host slots and of robots.txt."""
    return str(target.origin()).lower()


def _observe(host: HostSlots, resp, started: float, lag_s: float) -> None:
    """Report an answer's headers to its host: 429/503 throttle, other 5xx are errors, the rest clean."""
    code = resp.status
    kind = THROTTLED if code in (429, 503) else ERROR if code >= 500 else CLEAN
    retry_after = retry_after_seconds(resp.headers.get("Retry-After")) if kind == THROTTLED else None
    host.observe(kind, started, time.monotonic() - started, retry_after, code, lag_s)


def interleaved_by_host(urls: list[str]) -> list[str]:
    """``urls`` reordered round-robin over their hosts (first appearance order), so that a batch sorted by
    URL starts with one request per host rather than every request of its first host."""
    groups: dict[str, list[str]] = {}
    for url in urls:
        try:
            key = urlsplit(url).netloc.lower() if isinstance(url, str) else ""
        except ValueError:
            key = ""
        groups.setdefault(key, []).append(url)
    if len(groups) < 2:
        return list(urls)
    return [url for row in itertools.zip_longest(*groups.values()) for url in row if url is not None]


def _robots_headers(resp) -> None:
    if resp.status >= 400:
        raise http_failure(resp.status, resp.reason, resp.headers)


async def _read_capped(resp, limit: int, truncate: bool) -> bytes:
    """The body; past ``limit`` bytes, its first ``limit`` bytes (``truncate``) or :class:`Failure` ``too_large``."""
    chunks, total = [], 0
    async for chunk in resp.content.iter_any():
        total += len(chunk)
        if total > limit:
            if truncate:  # robots.txt: keep the first 512 KiB, as Google does
                chunks.append(chunk[: len(chunk) - (total - limit)])
                break
            raise Failure("too_large", f"body over max_bytes={limit}")
        chunks.append(chunk)
    return b"".join(chunks)

