"""A per-process DNS cache for the downloader, under the SSRF guard.

aiohttp caches answers per connector, and the step opens one connector per batch: without this, every
batch of a shard resolves its hosts again. :class:`CachingResolver` keeps the raw answers of the
system resolver for ``ttl_s`` (``getaddrinfo`` reports no TTL, so the TTL is fixed) in a dict owned
by the step instance; :class:`~waon_hf.steps.download.guard.GuardedResolver` sits on top of it and
filters the addresses on every use, cached or not.
"""

from __future__ import annotations

import socket
import time

from waon_hf.steps.download.robots import ROBOTS_CACHE_MAX

try:
    from aiohttp.abc import AbstractResolver as _AbstractResolver
except ImportError:  # the images extra is missing: the step says so when it runs
    _AbstractResolver = object


class CachingResolver(_AbstractResolver):
    """Answers from ``cache`` for ``ttl_s`` seconds; misses (and failures, never cached) go to ``inner``."""

    def __init__(self, cache: dict, ttl_s: float, inner=None):
        import aiohttp

        self._inner = inner if inner is not None else aiohttp.DefaultResolver()
        self._cache = cache
        self._ttl_s = ttl_s

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        key = (host, port, family)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return [dict(answer) for answer in hit[1]]
        answers = await self._inner.resolve(host, port, family)
        self._cache.pop(key, None)
        if len(self._cache) >= ROBOTS_CACHE_MAX:  # forget the oldest name
            del self._cache[next(iter(self._cache))]
        self._cache[key] = (now + self._ttl_s, [dict(answer) for answer in answers])
        return answers

    async def close(self) -> None:
        await self._inner.close()
