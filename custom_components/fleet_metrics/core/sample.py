"""The one currency between sources and sinks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

FieldValue = float | int | bool | str

_NO_COUNTERS: frozenset[str] = frozenset()


@dataclass(slots=True, frozen=True)
class Histogram:
    """Cumulative bucket counts by upper bound (the last bound is +inf), sum and count."""

    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


@dataclass(slots=True, frozen=True)
class Sample:
    """One reading: a measurement with tags and fields at a point in time.

    Field names carry their base unit (``power_watts``) so both sinks show the same name;
    counters are named without ``_total``, which only the Prometheus sink appends.
    ``counters`` names the fields that only ever grow; every other field is a gauge.
    ``histogram``, when set, is one more value: the Prometheus sink renders it as the
    histogram ``<measurement>`` and line protocol as ``le_<bound>``, ``sum`` and ``count``.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int = field(default_factory=time.time_ns)
    counters: frozenset[str] = _NO_COUNTERS
    histogram: Histogram | None = None
