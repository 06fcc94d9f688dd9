"""Per-host politeness: request slots (fixed or adaptive), a request rate, ``Crawl-delay``, ``Retry-After``.

A host is an origin (``scheme://host[:port]``). :class:`HostState` is what one step instance learns
about a host in one process (plain data, kept across batches); :class:`HostSlots` is the asyncio side
for one batch. Policy and defaults: ``docs/download.md`` ("Request policy").
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from collections.abc import Callable

from waon_hf.steps.download.robots import ROBOTS_CACHE_MAX

# How an answer moves an adaptive limit.
CLEAN, THROTTLED, ERROR = "clean", "throttled", "error"
LATENCY_RISE = 2.0  # smoothed latency over this many times the baseline (plus LATENCY_SLACK_S) is congestion
LATENCY_SLACK_S = 0.025
SMOOTHING = 0.3  # weight of a new latency sample in the moving average
MIN_GROWTH = 1 / 8  # per clean answer, so that a big limit recovers from a cut in a few rounds
PROBE_SLOWDOWN = 8  # growth near the last throttled limit is this many times slower
BASELINE_CREEP = 1.01  # the baseline drifts up 1% per sample, so a host that became slower is not punished forever
UNKNOWN_LATENCY_S = 0.2  # a host's time per request before its first answer (for scheduling only)


@dataclasses.dataclass
class HostState:
    """One host as one step instance sees it in one process: its adaptive limit and its outcomes."""

    limit: float
    start: float = 1.0  # the limit the host started at: a latency rise alone never cuts below it
    slow_start: bool = True  # grow by one per clean answer until the first sign of congestion
    smoothed_s: float | None = None  # moving average of the time to response headers
    baseline_s: float | None = None  # the lowest recent smoothed latency: the host when not loaded
    decreased_at: float = float("-inf")  # time.monotonic() of the last decrease
    ceiling: float | None = None  # the limit at the last throttling: probed slowly
    paused_until: float = float("-inf")  # Retry-After: no request starts before this
    last_end: float = float("-inf")  # end of the last request, for Crawl-delay
    requests: int = 0
    ok: int = 0  # 2xx answers
    throttled: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    timeouts: int = 0
    latency_total_s: float = 0.0  # summed over answered requests
    answered: int = 0

    def observe(self, kind: str, started: float, latency_s: float | None, maximum: int | None,
                code: int | None = None, lag_s: float = 0.0) -> None:
        """Count one request's outcome and, when ``maximum`` is set (adaptive), move the limit.

        Grow while answers are clean and fast: by one per answer in slow start, then by ``1/limit`` (about
        one per round of requests) but at least ``MIN_GROWTH``. Halve on a 429/503/timeout (down to 1) and
        cut by a quarter when latency rises (never below ``start``: a latency rise may be load anywhere
        on the path, while only the host's own answers say it wants fewer requests than we start every
        host with), at most once per adjustment period (only a request started after the
        last decrease can cause the next one, so one burst of 429s is one decrease). Within one slot of
        the limit at which the host last throttled (429/503/timeout), growth is ``PROBE_SLOWDOWN`` times
        slower: the host is probed, not pushed. ``lag_s`` (this loop's own lateness, :class:`LoopLag`) is
        taken off the latency before it is judged: a busy CPU here is not a slow host.
        """
        now = time.monotonic()
        self.requests += 1
        if code is not None:
            self.answered += 1
            self.latency_total_s += latency_s or 0.0
            self.ok += 200 <= code < 300
            self.throttled += code == 429
            self.server_errors += code >= 500
        elif kind == THROTTLED:
            self.timeouts += 1
        if maximum is None:
            return
        if kind == THROTTLED:
            self._decrease(started, now, 0.5, throttled=True)
        elif kind == CLEAN and latency_s is not None:
            sample = max(0.0, latency_s - lag_s)
            self.smoothed_s = sample if self.smoothed_s is None else (
                (1 - SMOOTHING) * self.smoothed_s + SMOOTHING * sample)
            self.baseline_s = self.smoothed_s if self.baseline_s is None else min(
                self.smoothed_s, self.baseline_s * BASELINE_CREEP)
            if self.smoothed_s > LATENCY_RISE * self.baseline_s + LATENCY_SLACK_S:
                self._decrease(started, now, 0.75, floor=min(self.start, self.limit))
            else:
                self.limit = min(float(maximum), self.limit + self._increment())

    def _increment(self) -> float:
        if self.slow_start:
            return 1.0
        step = max(1.0 / self.limit, MIN_GROWTH)  # about one more slot per round of requests, at least
        if self.ceiling is not None and self.limit >= self.ceiling - 1:
            step /= PROBE_SLOWDOWN  # near the limit that was throttled: probe, don't push
        return step

    def _decrease(self, started: float, now: float, factor: float, throttled: bool = False,
                  floor: float = 1.0) -> None:
        if started <= self.decreased_at:  # in flight before the last decrease: already accounted for
            return
        if throttled:  # the host said so (a latency rise may be our own CPU): remember where
            self.ceiling = self.limit
        self.limit = max(floor, self.limit * factor)
        self.slow_start = False
        self.decreased_at = now

    def outcomes(self, limit: int) -> dict[str, int]:
        """Integer counters for the stage's stats (summable across shards; ``limit``: the host's limit now)."""
        return {"requests": self.requests, "ok": self.ok, "http_429": self.throttled, "http_5xx": self.server_errors,
                "timeouts": self.timeouts, "latency_ms_total": round(self.latency_total_s * 1000),
                "answered": self.answered, "final_limit": limit}

    def reset_outcomes(self) -> None:
        """Zero the counters (the limit and latencies are kept): each ``apply`` reports its own requests."""
        self.requests = self.ok = self.throttled = self.server_errors = self.timeouts = self.answered = 0
        self.latency_total_s = 0.0


def host_state(states: dict[str, HostState], key: str, start: int) -> HostState:
    """``states[key]``, created at limit ``start``; at most ``ROBOTS_CACHE_MAX`` hosts (oldest dropped)."""
    state = states.get(key)
    if state is None:
        if len(states) >= ROBOTS_CACHE_MAX:
            del states[next(iter(states))]
        state = states[key] = HostState(limit=float(start), start=float(start))
    return state


class LoopLag:
    """How late the running event loop wakes up: time that every measured latency includes although no
    host is slower (the decode threads holding the GIL, a busy machine). Rises at once, decays slowly."""

    def __init__(self, period_s: float = 0.05):
        self.period_s = period_s
        self.lag_s = 0.0
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            began = time.monotonic()
            await asyncio.sleep(self.period_s)
            late = time.monotonic() - began - self.period_s
            self.lag_s = late if late > self.lag_s else (1 - SMOOTHING) * self.lag_s + SMOOTHING * late


class Gate:
    """A FIFO semaphore whose capacity may change between calls (``capacity()`` is read on every change)."""

    def __init__(self, capacity: Callable[[], int]):
        self.capacity = capacity
        self.inflight = 0
        self.waiters: collections.deque[asyncio.Future] = collections.deque()

    async def acquire(self) -> None:
        if not self.waiters and self.inflight < self.capacity():
            self.inflight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter  # the slot is granted (inflight counted) before the waiter is woken
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted, then cancelled before running: hand it on
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.inflight -= 1
        self.wake()

    def wake(self) -> None:
        while self.waiters and self.inflight < self.capacity():
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.inflight += 1
                waiter.set_result(None)


class HostSlots:
    """One host's slots and pacing for one batch.

    * at most ``limit`` requests in flight: ``slots`` when fixed, the adaptive ``state.limit`` (between 1
      and ``maximum``) otherwise;
    * with ``rate``, request starts at least ``1 / rate`` seconds apart;
    * adaptive only: after a 429/503 with ``Retry-After``, no request starts until it has passed (at most
      ``max_pause_s`` later);
    * with a ``crawl_delay`` (set once robots.txt is known), one request at a time, each starting at
      least ``crawl_delay`` seconds after the previous one **ended**: measured from the end, a request
      reaches the server no sooner than ``crawl_delay`` after the previous one did, whatever the network
      does. ``state`` outlives the batch, so the delay also holds between batches.
    """

    def __init__(self, state: HostState, slots: int, rate: float | None, maximum: int | None = None,
                 max_pause_s: float = 10.0):
        self.state = state
        self.max_pause_s = max_pause_s
        self.fixed = slots
        self.maximum = maximum
        self.gate = Gate(self.limit)
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = 0.0
        self.crawl_delay = 0.0
        self.serial = asyncio.Lock()
        self.pending = 0  # this batch's URLs of the host not finished yet (kept by the fetcher)

    def limit(self) -> int:
        return self.fixed if self.maximum is None else max(1, int(self.state.limit))

    def work_left(self) -> float:
        """Seconds the host's unfinished URLs need at its present pace: the priority of its requests
        for the global slots (``schedule.PriorityGate``)."""
        latency = self.state.smoothed_s if self.state.smoothed_s is not None else UNKNOWN_LATENCY_S
        if self.crawl_delay:
            return self.pending * (self.crawl_delay + latency)
        return self.pending * max(latency / self.limit(), self.interval)

    def observe(self, kind: str, started: float, latency_s: float | None, retry_after: float | None = None,
                code: int | None = None, lag_s: float = 0.0) -> None:
        self.state.observe(kind, started, latency_s, self.maximum, code, lag_s)
        if retry_after and self.maximum is not None:
            pause = time.monotonic() + min(retry_after, self.max_pause_s)
            self.state.paused_until = max(self.state.paused_until, pause)
        self.gate.wake()  # the limit may have grown

    @contextlib.asynccontextmanager
    async def slot(self):
        """Hold one of the host's slots for one request, paced."""
        await self.gate.acquire()
        try:
            await self._wait_until(lambda: self.state.paused_until)  # checked with the slot held: a pause
            await self._pace_rate()  # set while this request queued still holds
            if not self.crawl_delay:
                try:
                    yield
                finally:
                    self.state.last_end = time.monotonic()
                return
            async with self.serial:
                await self._wait_until(lambda: self.state.last_end + self.crawl_delay)
                try:
                    yield
                finally:
                    self.state.last_end = time.monotonic()
        finally:
            self.gate.release()

    async def _pace_rate(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        wait = self.next_at - now
        self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)

    @staticmethod
    async def _wait_until(when: Callable[[], float]) -> None:
        while (wait := when() - time.monotonic()) > 0:
            await asyncio.sleep(wait)
