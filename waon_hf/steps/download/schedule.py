"""Which waiting request gets the next of a process's global request slots.

A batch of a web crawl is long-tailed over hosts: a few hosts hold many of its URLs, each served at
most a few at a time, while thousands of hosts hold one or two. First come, first served hands the
global slots to whichever requests queued first, which on such a mix are mostly the small hosts'
(they queue all of their rows at once; a big host queues only as many as its limit): the big hosts
then start late and become the tail of every batch. :class:`PriorityGate` hands each free slot to
the waiting request of the host with the most work left instead (its unfinished URLs times the
time one of them takes at its limit): longest work first, the classic rule for a short makespan.
A host with one or two URLs needs little time and many such hosts fill the slots in parallel, so
they lose nothing by going last.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools


class PriorityGate:
    """``capacity`` slots; a waiter with a higher ``priority`` is served first (FIFO among equals)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.inflight = 0
        self.waiters: list[tuple[float, int, asyncio.Future]] = []  # a heap of (-priority, arrival, future)
        self.arrivals = itertools.count()

    async def acquire(self, priority: float = 0.0) -> None:
        if not self.waiters and self.inflight < self.capacity:
            self.inflight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiters, (-priority, next(self.arrivals), waiter))
        try:
            await waiter  # the slot is granted (inflight counted) before the waiter is woken
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before running: hand it on
            # else: left in the heap, done; wake() skips it
            raise

    def release(self) -> None:
        self.inflight -= 1
        self.wake()

    def wake(self) -> None:
        while self.waiters and self.inflight < self.capacity:
            _, _, waiter = heapq.heappop(self.waiters)
            if not waiter.done():
                self.inflight += 1
                waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, priority: float = 0.0):
        await self.acquire(priority)
        try:
            yield
        finally:
            self.release()
