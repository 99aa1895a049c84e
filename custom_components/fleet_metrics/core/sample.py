"""The one currency between sources and sinks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

FieldValue = float | int | bool | str

_NO_COUNTERS: frozenset[str] = frozenset()


@dataclass(slots=True, frozen=True)
class Sample:
    """One reading: a measurement with tags and fields at a point in time.

    Field names carry their base unit (``power_watts``) so both sinks show the same name;
    counters are named without ``_total``, which only the Prometheus sink appends.
    ``counters`` names the fields that only ever grow; every other field is a gauge.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ns: int = field(default_factory=time.time_ns)
    counters: frozenset[str] = _NO_COUNTERS
