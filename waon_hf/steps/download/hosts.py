"""Per-host politeness within a batch: request slots, a request rate, and robots.txt ``Crawl-delay``.

A host is an origin (``scheme://host[:port]``). Policy and defaults: ``docs/download.md`` ("Request policy").
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from waon_hf.steps.download.robots import ROBOTS_CACHE_MAX


class HostSlots:
    """One host's slots and pacing for one batch.

    * at most ``slots`` requests in flight;
    * with ``rate``, request starts at least ``1 / rate`` seconds apart;
    * with a ``crawl_delay`` (set once robots.txt is known), one request at a time, each starting at
      least ``crawl_delay`` seconds after the previous one **ended**: measured from the end, a request
      reaches the server no sooner than ``crawl_delay`` after the previous one did, whatever the network
      does. The end of the last request is kept in ``ended_at`` (the shared dict, across batches).
    """

    def __init__(self, key: str, slots: int, rate: float | None, ended_at: dict[str, float] | None = None):
        self.key = key
        self.slots = asyncio.Semaphore(slots)
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0
        self.crawl_delay = 0.0
        self.serial = asyncio.Lock()
        self.last_end = float("-inf")  # time.monotonic() when this host's last request ended
        self.ended_at = {} if ended_at is None else ended_at

    @contextlib.asynccontextmanager
    async def slot(self):
        """Hold one of the host's slots for one request, paced."""
        async with self.slots:
            await self._pace_rate()
            if not self.crawl_delay:
                try:
                    yield
                finally:
                    self.last_end = time.monotonic()
                return
            async with self.serial:
                await self._wait_crawl_delay()
                try:
                    yield
                finally:
                    self._remember_end()

    async def _pace_rate(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        wait = self.next_at - now
        self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)

    async def _wait_crawl_delay(self) -> None:
        previous = max(self.last_end, self.ended_at.get(self.key, float("-inf")))
        while (wait := previous + self.crawl_delay - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    def _remember_end(self) -> None:
        self.last_end = time.monotonic()
        self.ended_at.pop(self.key, None)  # re-inserted last: the oldest host is the first key
        if len(self.ended_at) >= ROBOTS_CACHE_MAX:
            del self.ended_at[next(iter(self.ended_at))]
        self.ended_at[self.key] = self.last_end
