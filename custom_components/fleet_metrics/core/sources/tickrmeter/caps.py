"""Caps on maps keyed by what arrives over the wire, forgetting the least recently seen.

A full map forgets the tenth of it seen longest ago in one pass (``heapq.nsmallest`` over
the entries' own ``last_seen``). One scan per cap/10 new keys keeps a flood of new keys at
O(log n) each, known keys on the hot path pay nothing, and no second ordering structure
costs memory per entry. What the flood pushed in is forgotten in turn, so it cannot lock
real entries out for longer than they stay silent.
"""

from __future__ import annotations

from heapq import nsmallest
from typing import Protocol, TypeVar


class Seen(Protocol):
    @property
    def last_seen(self) -> float: ...


K = TypeVar("K")
V = TypeVar("V", bound=Seen)


def make_room(table: dict[K, V], cap: int) -> list[tuple[K, V]]:
    """Before one new key goes into ``table`` (at most ``cap`` entries): when it is full,
    forget the least recently seen tenth. Returns what was forgotten, oldest first."""
    if len(table) < cap:
        return []
    count = max(len(table) - cap + 1, cap // 10, 1)
    oldest = nsmallest(count, table.items(), key=lambda item: item[1].last_seen)
    for key, _ in oldest:
        del table[key]
    return oldest
