"""InfluxDB line protocol encoding.

Written by hand because no maintained library encodes without pulling in a whole client;
the rules are the ones in the InfluxDB line protocol reference.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from ..sample import FieldValue, Sample

# Line protocol cannot carry a newline in a name or tag at all: it becomes a space there.
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\ ", "\r": r"\ "})
# Almost no name needs escaping, and str.translate costs ten times this search.
_SPECIAL = re.compile(r"[,= \\\n\r]")


def _escape_measurement(name: str) -> str:
    if _SPECIAL.search(name) is None:
        return name
    return name.replace("\\", "\\\\").translate(_MEASUREMENT_ESCAPES)


def _escape_key(key: str) -> str:
    if _SPECIAL.search(key) is None:
        return key
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


class LineEncoder:
    """Encodes samples, remembering the escaped text of tag sets and field names.

    A flush writes the same tag sets (one per device or symbol) and field names every
    tick; escaping and sorting them again each time was most of the cost. The memory is
    bounded: past ``limit`` entries it starts over.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._tag_text: dict[tuple[tuple[str, str], ...], str] = {}
        self._field_prefix: dict[str, str] = {}

    def _tags(self, tags: tuple[tuple[str, str], ...]) -> str:
        if len(self._tag_text) >= self._limit:
            self._tag_text.clear()
        text = "".join(
            f",{_escape_key(key)}={_escape_key(value)}"
            for key, value in sorted(tags)
            if key and value
        )
        self._tag_text[tags] = text
        return text

    def _prefix(self, key: str) -> str:
        if len(self._field_prefix) >= self._limit:
            self._field_prefix.clear()
        prefix = self._field_prefix[key] = f"{_escape_key(key)}=" if key else ""
        return prefix

    def encode(self, sample: Sample) -> str | None:
        """One line without the newline; None when no field survives (a line needs one)."""
        items = sample.fields.items()
        if sample.histogram is not None:
            items = {**sample.fields, **_histogram_fields(sample)}.items()
        prefixes = self._field_prefix
        fields = []
        for key, value in items:
            kind = type(value)
            if kind is float and math.isfinite(value):  # type: ignore[arg-type]
                encoded = repr(value)
            elif kind is int:
                encoded = f"{value}i"
            else:
                other = format_field_value(value)  # bool, str, NaN, ±inf
                if other is None:
                    continue
                encoded = other
            prefix = prefixes.get(key)
            if prefix is None:
                prefix = self._prefix(key)
            if prefix:
                fields.append(prefix + encoded)
        if not fields:
            return None
        tags = tuple(sample.tags.items())
        tag_text = self._tag_text.get(tags)
        if tag_text is None:
            tag_text = self._tags(tags)
        head = _escape_measurement(sample.measurement)
        return f"{head}{tag_text} {','.join(fields)} {sample.time_ns}"


_DEFAULT = LineEncoder()
encode_sample = _DEFAULT.encode


def encode_samples(samples: Iterable[Sample]) -> str:
    """Lines for every encodable sample, each ending in a newline."""
    lines = [line for line in map(encode_sample, samples) if line is not None]
    return "".join(f"{line}\n" for line in lines)
