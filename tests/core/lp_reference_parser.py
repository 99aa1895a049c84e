"""An independent line protocol reader, written from the InfluxDB reference rather than
from the encoder, so round trips check the encoder against the spec and not against itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Line:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, object]
    timestamp: int | None


def _read_token(text: str, pos: int, stops: str) -> tuple[str, int]:
    """Read until an unescaped stop character; backslash escapes the next character."""
    out = []
    while pos < len(text) and text[pos] not in stops:
        if text[pos] == "\\" and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
        else:
            out.append(text[pos])
            pos += 1
    return "".join(out), pos


def _read_field_value(text: str, pos: int) -> tuple[object, int]:
    if text[pos] == '"':
        pos += 1
        out = []
        while text[pos] != '"':
            if text[pos] == "\\" and text[pos + 1] in '"\\':
                out.append(text[pos + 1])
                pos += 2
            else:
                out.append(text[pos])
                pos += 1
        return "".join(out), pos + 1
    end = pos
    while end < len(text) and text[end] not in ", ":
        end += 1
    raw = text[pos:end]
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True, end
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False, end
    if raw.endswith("i"):
        return int(raw[:-1]), end
    if raw.endswith("u"):
        return int(raw[:-1]), end
    return float(raw), end


def parse_line(text: str) -> Line:
    measurement, pos = _read_token(text, 0, ", ")
    tags: dict[str, str] = {}
    while text[pos] == ",":
        key, pos = _read_token(text, pos + 1, "=")
        value, pos = _read_token(text, pos + 1, ", ")
        tags[key] = value
    assert text[pos] == " ", f"expected a space before the fields at {pos}: {text!r}"
    pos += 1
    fields: dict[str, object] = {}
    while True:
        key, pos = _read_token(text, pos, "=")
        field_value, pos = _read_field_value(text, pos + 1)
        fields[key] = field_value
        if pos >= len(text) or text[pos] == " ":
            break
        assert text[pos] == ",", f"unexpected {text[pos]!r} at {pos}: {text!r}"
        pos += 1
    timestamp = int(text[pos + 1 :]) if pos < len(text) else None
    return Line(measurement, tags, fields, timestamp)


# The encoder's documented replacements, written again from its module docstring (not from
# its code), so that a test can say what a reader must see for any sample.

MAX_KEY_BYTES = 65_535
MAX_STRING_BYTES = 65_535


def _clean(name: str) -> str:
    out = []
    for char in name:
        code = ord(char)
        if char == "\\":
            out.append("/")
        elif code < 0x20 or code == 0x7F:
            out.append(" ")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
    return "".join(out)


def expected_measurement(name: str) -> str:
    cleaned = _clean(name)
    return "_" + cleaned if cleaned.startswith("#") else cleaned


def expected_key(key: str) -> str:
    return "time_" if key == "time" else _clean(key)


def expected_value(value: object, counter: bool) -> object:
    """What a reader gets for a field value; None when the field is left out."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if counter:
            return value if -(2**63) <= value < 2**63 else None
        try:
            return float(value)
        except OverflowError:
            return None
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    assert isinstance(value, str)
    text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    raw = text.encode()
    if len(raw) > MAX_STRING_BYTES:
        text = raw[:MAX_STRING_BYTES].decode(errors="ignore")
    return text.replace("\n", "\\n").replace("\r", "\\r")


def _utf8(text: str) -> int:
    return len(text.encode())


def _escaped_bytes(text: str, specials: str) -> int:
    return _utf8(text) + sum(text.count(char) for char in specials)


def expected_point(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, object],
    counters: frozenset[str] = frozenset(),
) -> tuple[str, dict[str, str], dict[str, object]] | None:
    """(measurement, tags, fields) a reader sees for a sample; None when no line is written."""
    name = expected_measurement(measurement)
    kept_tags: dict[str, str] = {}
    for key, value in tags.items():
        tag_key, tag_value = expected_key(key), _clean(value)
        if tag_key and tag_value and tag_key not in kept_tags:
            kept_tags[tag_key] = tag_value
    series_bytes = _escaped_bytes(name, ", ") + sum(
        2 + _escaped_bytes(key, ",= ") + _escaped_bytes(value, ",= ")
        for key, value in kept_tags.items()
    )
    room = MAX_KEY_BYTES - 4 - series_bytes
    kept_fields: dict[str, object] = {}
    for key, raw in fields.items():
        field_key = expected_key(key)
        field_value = expected_value(raw, key in counters)
        if (
            field_key
            and field_value is not None
            and field_key not in kept_fields
            and _escaped_bytes(field_key, ",= ") <= room
        ):
            kept_fields[field_key] = field_value
    if not name or room <= 0 or not kept_fields:
        return None
    return name, kept_tags, kept_fields
