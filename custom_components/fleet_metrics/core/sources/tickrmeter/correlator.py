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
the oldest entries, each in O(1).
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

DEFAULT_REQUEST_TIMEOUT = 30.0
DEFAULT_MAX_PENDING = 100_000
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

    @property
    def response_ratio(self) -> float | None:
        closed = self.responses + self.timeouts
        return self.responses / closed if closed else None


class Correlator:
    def __init__(
        self,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
        latency_factory: Callable[[], WindowedLatency] | None = None,
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> None:
        self.buckets = tuple(sorted(buckets))
        self.request_timeout = request_timeout
        self.max_pending = max_pending
        self._clock = clock
        self._latency_factory = latency_factory or (lambda: WindowedLatency(clock=clock))
        self._pending: OrderedDict[tuple[str, str], tuple[float, SymbolStats]] = OrderedDict()
        self.symbols: dict[str, SymbolStats] = {}
        self.evicted = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _stats(self, symbol: str) -> SymbolStats:
        stats = self.symbols.get(symbol)
        if stats is None:
            stats = self.symbols[symbol] = SymbolStats(
                latency=self._latency_factory(), bucket_counts=[0] * (len(self.buckets) + 1)
            )
        return stats

    def request(self, device: str, symbol: str) -> None:
        stats = self._stats(symbol)
        stats.requests += 1
        key = (device, symbol)
        if key in self._pending:
            stats.duplicates += 1
            return
        if len(self._pending) >= self.max_pending:
            self._pending.popitem(last=False)
            self.evicted += 1
        self._pending[key] = (self._clock(), stats)

    def response(self, device: str, symbol: str) -> float | None:
        """Close the open request; returns its latency, or None for an unsolicited answer."""
        opened = self._pending.pop((device, symbol), None)
        if opened is None:
            self._stats(symbol).unsolicited += 1
            return None
        started, stats = opened
        latency = self._clock() - started
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
        while pending:
            key, (started, stats) = next(iter(pending.items()))
            if started > deadline:
                break
            del pending[key]
            stats.timeouts += 1
            expired += 1
        return expired

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
