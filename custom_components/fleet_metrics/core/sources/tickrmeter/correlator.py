"""Pairs each device's stock-update request with the backend's answer to that device.

Outcomes, per symbol:
- ``response``: an answer closes the open ``(device, symbol)`` request; its latency is kept.
- ``timeout``: no answer within ``request_timeout``; found by ``sweep``.
- ``duplicate``: a request for a pair that is still open. The first request's time is kept:
  the backend answers requests in order, so the first is the one being served, and
  restarting the clock would hide slow answers.
- ``unsolicited``: an answer nobody (still) waits for, e.g. after its request timed out.
- ``evicted``: open requests dropped because ``max_pending`` was reached (oldest first).

Open requests live in one OrderedDict in arrival order: the sweep and the eviction touch only
the oldest entries, each in O(1). An open request is one string key (device id, NUL,
symbol: device ids hold no NUL) and its start time, about 190 bytes; it holds no reference to
its symbol's statistics, so a forgotten symbol's state is freed at once.

Symbols are capped (``max_symbols``): a full table forgets its least recently seen tenth
(``caps.make_room``), and their counts move to ``forgotten`` so fleet-wide totals never go
backwards.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from ...sample import Histogram
from ...stats.windowed import WindowedLatency, WindowSummary
from .caps import make_room

DEFAULT_REQUEST_TIMEOUT = 30.0
# Sized for an outage: 8,000 devices' requests left unanswered for the 30 s timeout fit.
DEFAULT_MAX_PENDING = 20_000
# A fleet shows tens to a few hundred symbols; each costs 0.5 to 20 kB (its latency window)
# and about 20 series.
DEFAULT_MAX_SYMBOLS = 1_000
# Upper bounds of the latency histogram, in seconds; +inf is implied.
DEFAULT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class SymbolStats:
    requests: int = 0
    responses: int = 0
    timeouts: int = 0
    duplicates: int = 0
    unsolicited: int = 0
    latency: WindowedLatency = field(default_factory=WindowedLatency)
    # Since start, for the Prometheus histogram: per-bucket (not cumulative) counts.
    bucket_counts: list[int] = field(default_factory=list)
    latency_sum: float = 0.0
    last_seen: float = 0.0
    first_seen: float = 0.0

    @property
    def response_ratio(self) -> float | None:
        closed = self.responses + self.timeouts
        return self.responses / closed if closed else None


@dataclass(slots=True)
class Totals:
    """Counts of symbols that are no longer tracked."""

    requests: int = 0
    responses: int = 0
    timeouts: int = 0

    def add(self, stats: SymbolStats) -> None:
        self.requests += stats.requests
        self.responses += stats.responses
        self.timeouts += stats.timeouts


class Correlator:
    def __init__(
        self,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
        latency_factory: Callable[[], WindowedLatency] | None = None,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
        max_symbols: int = DEFAULT_MAX_SYMBOLS,
    ) -> None:
        self.buckets = tuple(sorted(buckets))
        self.request_timeout = request_timeout
        self.max_pending = max_pending
        self.max_symbols = max_symbols
        self._clock = clock
        self.clock = clock  # read by state.py: saved ages are relative to it
        self._latency_factory = latency_factory or (lambda: WindowedLatency(clock=clock))
        self._pending: OrderedDict[str, float] = OrderedDict()
        self.symbols: dict[str, SymbolStats] = {}
        self.evicted = 0
        self.symbols_forgotten = 0
        self.forgotten = Totals()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def new_window(self) -> WindowedLatency:
        """An empty latency window as this correlator makes them (a restore fills one)."""
        return self._latency_factory()

    def _new_stats(self, symbol: str, now: float) -> SymbolStats:
        for _, old in make_room(self.symbols, self.max_symbols):
            self.forgotten.add(old)
            self.symbols_forgotten += 1
        stats = self.symbols[symbol] = SymbolStats(
            latency=self._latency_factory(),
            bucket_counts=[0] * (len(self.buckets) + 1),
            first_seen=now,
        )
        return stats

    def request(self, device: str, symbol: str) -> None:
        now = self._clock()
        stats = self.symbols.get(symbol) or self._new_stats(symbol, now)
        stats.last_seen = now
        stats.requests += 1
        key = f"{device}\0{symbol}"
        pending = self._pending
        if key in pending:
            stats.duplicates += 1
            return
        if len(pending) >= self.max_pending:
            pending.popitem(last=False)
            self.evicted += 1
        pending[key] = now

    def response(self, device: str, symbol: str) -> float | None:
        """Close the open request; returns its latency, or None for an unsolicited answer."""
        now = self._clock()
        started = self._pending.pop(f"{device}\0{symbol}", None)
        stats = self.symbols.get(symbol) or self._new_stats(symbol, now)
        stats.last_seen = now
        if started is None:
            stats.unsolicited += 1
            return None
        latency = now - started
        stats.responses += 1
        stats.latency.add(latency)
        stats.bucket_counts[bisect_left(self.buckets, latency)] += 1
        stats.latency_sum += latency
        return latency

    def histogram(self, stats: SymbolStats) -> Histogram:
        """Cumulative buckets since start, as Prometheus histograms are."""
        cumulative = list(accumulate(stats.bucket_counts))
        bounds = (*self.buckets, math.inf)
        return Histogram(
            tuple(zip(bounds, cumulative, strict=True)), stats.latency_sum, cumulative[-1]
        )

    def sweep(self) -> int:
        """Count and drop requests older than the timeout; returns how many."""
        deadline = self._clock() - self.request_timeout
        expired = 0
        pending = self._pending
        symbols = self.symbols
        while pending:
            key, started = next(iter(pending.items()))
            if started > deadline:
                break
            del pending[key]
            stats = symbols.get(key.partition("\0")[2])
            if stats is None:  # its symbol was forgotten while the request was open
                self.forgotten.timeouts += 1
            else:
                stats.timeouts += 1
            expired += 1
        return expired

    def totals(self) -> tuple[int, int, int]:
        """(requests, responses, timeouts) since start, forgotten symbols included."""
        forgotten = self.forgotten
        requests, responses, timeouts = forgotten.requests, forgotten.responses, forgotten.timeouts
        for stats in self.symbols.values():
            requests += stats.requests
            responses += stats.responses
            timeouts += stats.timeouts
        return requests, responses, timeouts

    def summaries(self) -> dict[str, WindowSummary]:
        """The latency window of every symbol; each one merges sketches, so read once a tick."""
        return {symbol: stats.latency.summary() for symbol, stats in self.symbols.items()}

    def slowest(
        self, top: int = 5, summaries: dict[str, WindowSummary] | None = None
    ) -> list[tuple[str, float]]:
        """Symbols by windowed p95 latency, slowest first."""
        windows = self.summaries() if summaries is None else summaries
        ranked = [
            (symbol, window.p95) for symbol, window in windows.items() if window.p95 is not None
        ]
        ranked.sort(key=lambda item: item[1], reverse=True)
        return ranked[:top]
