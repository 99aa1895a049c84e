"""What a dashboard shows of the fleet: rates per minute, ratios and windows, taken on a tick.

The tracker keeps cumulative counters (what Prometheus wants); a person wants "requests per
minute" and "how many of the recent requests timed out". ``SnapshotTaker`` keeps the
counters it saw over the last ``rate_window`` seconds and turns them into both.

A symbol the correlator forgot (its cap) and met again starts counting from zero: its
rates then count from its return, never below zero. Fleet-wide rates use the correlator's
totals, which keep what forgotten symbols counted.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ...stats.windowed import WindowSummary, summarize
from .fleet import FleetSummary
from .tracker import FleetTracker

# (requests, responses, timeouts) of one symbol, cumulative.
_Totals = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Rates:
    """Per minute over the rate window; None until two snapshots span some time."""

    requests: float | None = None
    responses: float | None = None
    timeouts: float | None = None
    # Timed out over answered plus timed out, in the window; None without any outcome.
    timeout_ratio: float | None = None
    outcomes: int = 0

    @property
    def response_ratio(self) -> float | None:
        return None if self.timeout_ratio is None else 1.0 - self.timeout_ratio


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    rates: Rates
    latency: WindowSummary


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    fleet: FleetSummary
    rates: Rates
    latency: WindowSummary  # every symbol's window merged
    slowest: list[tuple[str, float]]  # (symbol, p95 seconds), slowest first
    symbols: dict[str, SymbolSnapshot]
    pending: int
    received: int
    malformed: int


def _rates(now: _Totals, then: _Totals, minutes: float) -> Rates:
    if now[0] < then[0] or now[1] < then[1] or now[2] < then[2]:
        then = (0, 0, 0)  # counting started again: the symbol was forgotten meanwhile
    requests, responses, timeouts = (a - b for a, b in zip(now, then, strict=True))
    outcomes = responses + timeouts
    return Rates(
        requests=requests / minutes,
        responses=responses / minutes,
        timeouts=timeouts / minutes,
        timeout_ratio=timeouts / outcomes if outcomes else None,
        outcomes=outcomes,
    )


class SnapshotTaker:
    def __init__(
        self,
        tracker: FleetTracker,
        top: int = 5,
        rate_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tracker = tracker
        self.top = top
        self.rate_window = rate_window
        self._clock = clock
        # (when, fleet-wide totals, totals by symbol)
        self._history: deque[tuple[float, _Totals, dict[str, _Totals]]] = deque()

    def _baseline(
        self, now: float, fleet: _Totals, totals: dict[str, _Totals]
    ) -> tuple[float, _Totals, dict[str, _Totals]]:
        """The newest counters at least ``rate_window`` old, else the oldest kept."""
        history = self._history
        history.append((now, fleet, totals))
        while len(history) > 1 and history[1][0] <= now - self.rate_window:
            history.popleft()
        return history[0]

    def take(self) -> FleetSnapshot:
        tracker = self.tracker
        correlator = tracker.correlator
        correlator.sweep()
        tracker.fleet.forget_stale()
        now = self._clock()
        totals = {
            symbol: (stats.requests, stats.responses, stats.timeouts)
            for symbol, stats in correlator.symbols.items()
        }
        fleet_totals = correlator.totals()
        then, fleet_baseline, baseline = self._baseline(now, fleet_totals, totals)
        minutes = (now - then) / 60.0
        symbol_rates = {
            symbol: _rates(counts, baseline.get(symbol, (0, 0, 0)), minutes) if minutes else Rates()
            for symbol, counts in totals.items()
        }
        windows = correlator.summaries()
        return FleetSnapshot(
            fleet=tracker.fleet.summary(),
            rates=_rates(fleet_totals, fleet_baseline, minutes) if minutes else Rates(),
            latency=summarize(stats.latency for stats in correlator.symbols.values()),
            slowest=correlator.slowest(self.top, windows),
            symbols={
                symbol: SymbolSnapshot(symbol_rates[symbol], windows[symbol]) for symbol in totals
            },
            pending=correlator.pending,
            received=sum(tracker.counts.received.values()),
            malformed=tracker.malformed,
        )
