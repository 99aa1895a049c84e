"""The one currency between sources and sinks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

FieldValue = float | int | bool | str

# Which output a sample is meant for, when not both (see ``Sample.sink``).
SINK_PROMETHEUS: Final = "prometheus"
SINK_LINE_PROTOCOL: Final = "line_protocol"
SinkName = Literal["prometheus", "line_protocol"]

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

    ``sink`` is None for a sample both outputs show under the same names (every source but
    one). A source whose readings must follow two outside conventions that differ in shape,
    not only in name (host agents: node_exporter's ``node_cpu_seconds_total{mode}`` against
    telegraf's ``cpu`` line with one field per mode), emits one sample per output and names
    the output here; the other output skips it with one attribute test, which keeps the
    line protocol encoder's hot path as it was. Two samples are cheaper and clearer than
    teaching both sinks each convention, and the sinks stay convention-free.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int = field(default_factory=time.time_ns)
    counters: frozenset[str] = _NO_COUNTERS
    histogram: Histogram | None = None
    sink: SinkName | None = None
