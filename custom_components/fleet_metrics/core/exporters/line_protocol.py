"""InfluxDB line protocol encoding.

Written by hand because no maintained library encodes without pulling in a whole client;
the rules are the ones in the InfluxDB line protocol reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..sample import FieldValue, Sample

# Line protocol cannot carry a newline in a name or tag at all: it becomes a space there.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})


def _escape_measurement(name: str) -> str:
    return name.replace("\\", "\\\\").translate(_MEASUREMENT_ESCAPES)


def _escape_key(key: str) -> str:
    return key.replace("\\", "\\\\").translate(_KEY_ESCAPES)


def _escape_string_field(value: str) -> str:
    # Only \\ and \" are escapes inside strings; a newline is written as the two
    # characters \n so that no output line is ever split.
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def format_field_value(value: FieldValue) -> str | None:
    """Encode one field value; None for values line protocol cannot carry (NaN, ±inf)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return repr(value)
    return _escape_string_field(value)


def _histogram_fields(sample: Sample) -> dict[str, FieldValue]:
    histogram = sample.histogram
    if histogram is None:
        return {}
    fields: dict[str, FieldValue] = {
        f"le_{'inf' if math.isinf(bound) else repr(bound)}": count
        for bound, count in histogram.buckets
    }
    fields["sum"] = histogram.sum
    fields["count"] = histogram.count
    return fields


def encode_sample(sample: Sample) -> str | None:
    """One line without the newline; None when no field survives (a line needs one)."""
    fields = []
    items = sample.fields.items()
    if sample.histogram is not None:
        items = {**sample.fields, **_histogram_fields(sample)}.items()
    for key, value in items:
        encoded = format_field_value(value)
        if encoded is not None and key:
            fields.append(f"{_escape_key(key)}={encoded}")
    if not fields:
        return None
    head = _escape_measurement(sample.measurement)
    tags = "".join(
        f",{_escape_key(key)}={_escape_key(value)}"
        for key, value in sorted(sample.tags.items())
        if key and value
    )
    return f"{head}{tags} {','.join(fields)} {sample.time_ns}"


def encode_samples(samples: Iterable[Sample]) -> str:
    """Lines for every encodable sample, each ending in a newline."""
    lines = [line for line in map(encode_sample, samples) if line is not None]
    return "".join(f"{line}\n" for line in lines)
