"""Which symbols are degraded: timeouts or latency past a threshold, with enough evidence.

A symbol changes state only when its window holds at least ``min_outcomes`` answers and
timeouts, so one lost request on a quiet symbol neither raises nor clears an alarm, and a
symbol that goes silent keeps the state it had. A symbol the tracker no longer holds (its
cap forgot it) is forgotten here too, without a transition, so this map stays within the
symbol cap.
"""

from __future__ import annotations

from dataclasses import dataclass

from .snapshot import FleetSnapshot

REASON_TIMEOUTS = "timeout_ratio"
REASON_LATENCY = "latency"


@dataclass(frozen=True, slots=True)
class Thresholds:
    timeout_ratio: float = 0.10
    p95_seconds: float = 5.0
    min_outcomes: int = 5


@dataclass(frozen=True, slots=True)
class Transition:
    symbol: str
    degraded: bool
    reasons: tuple[str, ...]  # empty when recovered
    timeout_ratio: float | None
    p95_seconds: float | None


class SymbolHealth:
    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.degraded: dict[str, tuple[str, ...]] = {}

    def update(self, snapshot: FleetSnapshot) -> list[Transition]:
        limits = self.thresholds
        transitions = []
        for gone in self.degraded.keys() - snapshot.symbols.keys():
            del self.degraded[gone]
        for symbol, state in sorted(snapshot.symbols.items()):
            ratio, p95 = state.rates.timeout_ratio, state.latency.p95
            if state.rates.outcomes < limits.min_outcomes:
                continue
            reasons = []
            if ratio is not None and ratio > limits.timeout_ratio:
                reasons.append(REASON_TIMEOUTS)
            if p95 is not None and p95 > limits.p95_seconds:
                reasons.append(REASON_LATENCY)
            was = symbol in self.degraded
            if reasons:
                self.degraded[symbol] = tuple(reasons)
                if not was:
                    transitions.append(Transition(symbol, True, tuple(reasons), ratio, p95))
            elif was:
                del self.degraded[symbol]
                transitions.append(Transition(symbol, False, (), ratio, p95))
        return transitions
