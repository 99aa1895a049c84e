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
        value, pos = _read_field_value(text, pos + 1)
        fields[key] = value
        if pos >= len(text) or text[pos] == " ":
            break
        assert text[pos] == ",", f"unexpected {text[pos]!r} at {pos}: {text!r}"
        pos += 1
    timestamp = int(text[pos + 1 :]) if pos < len(text) else None
    return Line(measurement, tags, fields, timestamp)
