"""InfluxDB line protocol encoding.

Written by hand because no maintained library encodes without pulling in a whole client.
Every line this module writes is accepted by InfluxDB 1.x, 2.x and telegraf alike, and means
the same to each of them. Where line protocol cannot carry a character, the rule is:

Names (measurement, tag keys and values, field keys):
- a backslash becomes ``/``: InfluxDB 1.x and telegraf keep ``\\\\`` as two backslashes
  in names while 2.x reads one, and 1.x cannot read a backslash before a separator or at the
  end of a tag value at all (``device=kitchen\\`` is "invalid tag format");
- control characters (U+0000-U+001F, U+007F) become a space (which is then escaped): a
  newline would end the line, and the others are invisible trouble in every query language;
- a lone surrogate (undecodable input) becomes U+FFFD, as InfluxDB does with bad UTF-8;
- a measurement starting with ``#`` gets a ``_`` in front (``#x`` is a comment line that
  InfluxDB answers 204 and silently drops); a tag or field key ``time`` becomes ``time_``
  (InfluxDB refuses it);
- a tag with an empty key or value is left out, as is a field with an empty key; a sample
  with an empty measurement is skipped; when two keys become equal after these rules the
  first one in the sample wins;
- a series key (measurement and tags) longer than 65,535 bytes skips the sample, and a field
  whose key makes series key + field key longer than that is left out (InfluxDB's limit).

Field values:
- a Python int is an integer (``1i``) only in a field named in ``sample.counters`` (and in a
  histogram's counts); every other number is a float, so a field that arrives as ``21`` and
  later as ``21.5`` keeps one type. An integer counter outside int64 and an int too large for
  a float are left out, like NaN and ±inf;
- strings escape ``\\`` and ``"``; a newline or carriage return is written as the two
  characters ``\\n`` / ``\\r`` so no output line is ever split; a lone surrogate becomes
  U+FFFD; a string longer than 65,535 UTF-8 bytes is cut there (InfluxDB's string limit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from ..sample import SINK_LINE_PROTOCOL, FieldValue, Sample

MAX_KEY_BYTES = 65_535
MAX_STRING_BYTES = 65_535
# InfluxDB 1.x stores a field as "<series key>#!~#<field key>", all within MAX_KEY_BYTES.
_FIELD_KEY_SEPARATOR_BYTES = 4
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_INT = 2**1023  # any int below this converts to a finite float

# Almost no name needs any of this, and str.translate costs ten times this search.
_SPECIAL = re.compile(r"[,= \\\x00-\x1f\x7f\ud800-\udfff#]|^time$")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_CLEAN = str.maketrans({"\\": "/", **{chr(c): " " for c in (*range(0x20), 0x7F)}})
_MEASUREMENT_ESCAPES = str.maketrans({",": r"\,", " ": r"\ "})
_KEY_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_FIELD_KEY = re.compile(r"((?:[^\\=]|\\.)*)=")  # an escaped key, up to its "="
_STRING_SPECIAL = re.compile(r'[\\"\n\r\ud800-\udfff]')
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"})


def _clean(name: str) -> str:
    """``name`` with what no line protocol reader carries replaced (see the module rules)."""
    name = name.translate(_CLEAN)
    if not name.isascii():
        name = _SURROGATES.sub("\ufffd", name)
    return name


def escape_measurement(name: str) -> str:
    """The measurement as written; "" when the sample cannot have one."""
    if _SPECIAL.search(name) is None:
        return name
    name = _clean(name)
    if name.startswith("#"):
        name = "_" + name
    return name.translate(_MEASUREMENT_ESCAPES)


def escape_tag_value(value: str) -> str:
    """A tag value as written ("" when there is nothing to write)."""
    if _SPECIAL.search(value) is None:
        return value
    return _clean(value).translate(_KEY_ESCAPES)


def escape_key(key: str) -> str:
    """A tag key or field key as written ("" when there is nothing to write)."""
    if key == "time":
        return "time_"
    return escape_tag_value(key)


def _escape_string_field(value: str) -> str:
    long = len(value) > MAX_STRING_BYTES // 4  # only then can it pass the limit in bytes
    if not long and _STRING_SPECIAL.search(value) is None:
        return f'"{value}"'
    if not value.isascii():
        value = _SURROGATES.sub("\ufffd", value)
    if long and len(encoded := value.encode()) > MAX_STRING_BYTES:
        value = encoded[:MAX_STRING_BYTES].decode(errors="ignore")
    return f'"{value.translate(_STRING_ESCAPES)}"'


def format_field_value(value: FieldValue, integer: bool = False) -> str | None:
    """Encode one field value; None for what line protocol cannot carry (NaN, ±inf, range).

    ``integer``: an int is written as an integer (the field is a counter), else as a float.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if integer:
            return f"{value}i" if _INT64_MIN <= value <= _INT64_MAX else None
        try:
            return repr(float(value))
        except OverflowError:
            return None
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _escape_string_field(value)
    return None  # not a field type: a source bug must not stop the output


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


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode(errors="replace"))


def _tag_text(tags: Iterable[tuple[str, str]]) -> str:
    written: dict[str, str] = {}
    for key, value in tags:
        escaped_key, escaped_value = escape_key(str(key)), escape_tag_value(str(value))
        if escaped_key and escaped_value:
            written.setdefault(escaped_key, escaped_value)
    return "".join(f",{key}={value}" for key, value in sorted(written.items()))


def series_head(measurement: str, tags: Mapping[str, str]) -> tuple[str, int]:
    """The escaped ``measurement,tags`` text of a series ("" when no line can carry it) and
    the bytes it leaves for a field key: what ``LineEncoder`` remembers per series, for a
    source that writes the lines of its own series itself."""
    measurement = escape_measurement(measurement)
    head = measurement + _tag_text(tags.items()) if measurement else ""
    room = MAX_KEY_BYTES - _FIELD_KEY_SEPARATOR_BYTES - _utf8_len(head)
    return ("", room) if room <= 0 else (head, room)


class LineEncoder:
    """Encodes samples, remembering the escaped text of series keys and field names.

    A flush writes the same series (one per device or symbol) and field names every tick;
    escaping and sorting them again each time was most of the cost. The memory is bounded:
    past ``limit`` entries a cache starts over. ``skipped`` counts samples that cannot be
    written at all (empty measurement, series key over 65,535 bytes).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        # (measurement, *tag items) -> (series key text or "", bytes left for a field key)
        self._head: dict[tuple[object, ...], tuple[str, int]] = {}
        # Field keys written as they are; keys the rules change live apart, because two of
        # them may collide in one line and only such a line needs the slower check.
        self._field_prefix: dict[str, str] = {}
        self._changed_prefix: dict[str, str] = {}
        self._longest_key = 0
        self.skipped = 0

    def _series(
        self, cache_key: tuple[object, ...], measurement: str, tags: Mapping[str, str]
    ) -> tuple[str, int]:
        if len(self._head) >= self._limit:
            self._head.clear()
        entry = self._head[cache_key] = series_head(measurement, tags)
        return entry

    def _prefix(self, key: str) -> tuple[str, bool]:
        """The ``key=`` text and whether the key is written as it is."""
        changed = self._changed_prefix.get(key)
        if changed is not None:
            return changed, False
        escaped = escape_key(key)
        self._longest_key = max(self._longest_key, _utf8_len(escaped))
        cache = self._field_prefix if escaped == key else self._changed_prefix
        if len(cache) >= self._limit:
            cache.clear()
        prefix = cache[key] = f"{escaped}=" if escaped else ""
        return prefix, cache is self._field_prefix

    def encode(self, sample: Sample) -> str | None:
        """One line without the newline; None when no field survives (a line needs one), or
        when the sample is meant for another output (``Sample.sink``)."""
        if sample.sink is not None and sample.sink != SINK_LINE_PROTOCOL:
            return None
        if sample.histogram is None:
            return self.encode_fields(
                sample.measurement, sample.tags, sample.fields, sample.time_ns, sample.counters
            )
        histogram = _histogram_fields(sample)
        return self.encode_fields(
            sample.measurement,
            sample.tags,
            {**sample.fields, **histogram},
            sample.time_ns,
            sample.counters.union(key for key in histogram if key != "sum"),
        )

    def encode_fields(
        self,
        measurement: str,
        tags: Mapping[str, str],
        fields: Mapping[str, FieldValue],
        time_ns: int,
        counters: frozenset[str] | None,
    ) -> str | None:
        """``encode`` of a sample's parts, for a source that writes lines without making
        samples first; ``counters`` None: every int is an integer field."""
        prefixes = self._field_prefix
        texts = []
        plain = True
        isfinite, low, high = math.isfinite, _INT64_MIN, _INT64_MAX  # locals: the hot loop
        for key, value in fields.items():
            kind = type(value)
            if kind is float and isfinite(value):  # type: ignore[arg-type]
                encoded = repr(value)
            elif kind is int:
                if counters is None or key in counters:
                    if not low <= value <= high:  # type: ignore[operator]
                        continue
                    encoded = f"{value}i"
                elif -_FLOAT_INT < value < _FLOAT_INT:  # type: ignore[operator]
                    encoded = repr(float(value))
                else:
                    continue
            else:
                other = format_field_value(value)  # bool, str, ±inf, a subclass
                if other is None:
                    continue
                encoded = other
            prefix = prefixes.get(key)
            if prefix is None:
                prefix, plain_key = self._prefix(key)
                plain = plain and plain_key
            if prefix:
                texts.append(prefix + encoded)
        if not texts:
            return None
        cache_key = (measurement, *tags.items())
        entry = self._head.get(cache_key)
        if entry is None:
            entry = self._series(cache_key, measurement, tags)
        head, room = entry
        if not head:
            self.skipped += 1
            return None
        if not plain or room < self._longest_key:
            texts = _checked(texts, room)
            if not texts:
                self.skipped += 1
                return None
        return f"{head} {','.join(texts)} {time_ns}"


def _checked(fields: list[str], room: int) -> list[str]:
    """Fields without later duplicates of a key and without keys too long to store."""
    seen: set[str] = set()
    kept = []
    for text in fields:
        match = _FIELD_KEY.match(text)
        key = match.group(1) if match else text
        if key in seen or _utf8_len(key) > room:
            continue
        seen.add(key)
        kept.append(text)
    return kept


def tag_text(tags: Mapping[str, str]) -> str:
    """The escaped, sorted ``,key=value`` text of a tag set, as encoded lines carry it."""
    return _tag_text(tags.items())


_DEFAULT = LineEncoder()
encode_sample = _DEFAULT.encode


def encode_samples(samples: Iterable[Sample]) -> str:
    """Lines for every encodable sample, each ending in a newline."""
    lines = [line for line in map(encode_sample, samples) if line is not None]
    return "".join(f"{line}\n" for line in lines)
