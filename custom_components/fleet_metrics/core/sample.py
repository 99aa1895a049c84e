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
class CompleteSet:
    """Marks a sample as part of the whole current contents of some of its fields' families.

    A family whose label sets churn (a top-N ranking, devices counted by firmware version)
    would otherwise keep a series that left the set until the Prometheus sink's TTL ends,
    so a dashboard sees two symbols at rank 1. Every sample of ``Sample.measurement`` that
    shares one ``time_ns`` (a source's tick) and the values of the ``scope`` tags, and names
    a field in ``fields`` here, belongs to one set: the family's series in that scope are
    exactly that set's, and a series an earlier set held goes at once. A sample that names
    a field here without carrying it states the empty set (nothing in that family now).
    Line protocol writes points in time and ignores this. Sources send these as
    ``SetSample``.
    """

    fields: frozenset[str]
    scope: tuple[str, ...] = ()  # tag names whose values bound the set: ("host",) per host


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

    A sample that belongs to a complete set (a ranking, counts by version) is a
    ``SetSample``: a subclass, so that this class keeps its fields and its construction
    cost (every field is one more ``object.__setattr__`` in a frozen dataclass's
    ``__init__``, paid on every message of the event sources).
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int = field(default_factory=time.time_ns)
    counters: frozenset[str] = _NO_COUNTERS
    histogram: Histogram | None = None
    sink: SinkName | None = None


@dataclass(slots=True, frozen=True, kw_only=True)
class SetSample(Sample):
    """A sample of a complete set: ``complete`` names the fields whose families the samples
    of this tick hold in full, so that a series that left the set leaves at once."""

    complete: CompleteSet
