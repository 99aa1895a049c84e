"""The generic WebSocket source's JSON path extraction on arbitrary paths and documents."""

from __future__ import annotations

import math
from typing import Any

import voluptuous as vol
from hypothesis import given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.websocket import (
    MAX_TEXT,
    SCHEMA,
    WebSocketSource,
    compile_path,
    resolve,
)
from tests.core.test_tasmota_hypothesis import JSON, encoded

PATH_TEXT = st.text(st.sampled_from("ab0.[]9x "), max_size=12)
PATHS = st.sampled_from(["a", "a.b", "a[0]", "a[1].b", "b[0][0]", "a.b.c", "x"])


@settings(max_examples=500, deadline=None)
@given(PATH_TEXT, JSON)
def test_paths_compile_or_are_refused_and_resolve_anything(text: str, document: Any) -> None:
    try:
        path = compile_path(text)
    except ValueError:
        return
    assert path and all(isinstance(part, str | int) for part in path)
    resolve(document, path)


def source(fields: list[str], tags: list[str]) -> WebSocketSource:
    config = vol.Schema(SCHEMA)(
        {
            "url": "ws://127.0.0.1:1/live",
            "fields": {f"f{index}": path for index, path in enumerate(fields)},
            "tags": {f"t{index}": path for index, path in enumerate(tags)},
        }
    )
    return WebSocketSource("feed", config)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(PATHS, min_size=1, max_size=3),
    st.lists(PATHS, max_size=2),
    st.one_of(JSON.map(encoded), st.binary(max_size=30)),
)
def test_any_frame_is_a_sample_a_counted_rejection_or_skipped(
    fields: list[str], tags: list[str], frame: bytes
) -> None:
    ws = source(fields, tags)
    seen: list[Sample] = []
    ws.handle(frame, seen.append)
    assert len(seen) + ws.rejects.total + ws.skipped == 1
    assert ws.rejects.by_kind["exception"] == 0
    for sample in seen:
        for value in sample.fields.values():
            if isinstance(value, float):
                assert math.isfinite(value)
            elif isinstance(value, str):
                assert len(value) <= MAX_TEXT and value.isprintable()
        for value in sample.tags.values():
            assert 0 < len(value) <= MAX_TEXT and value.isprintable()


def test_number_strings_that_are_not_finite_are_not_fields() -> None:
    ws = source(["a", "b", "x"], [])
    seen: list[Sample] = []
    ws.handle(b'{"a": "NaN", "b": "-Infinity", "x": "1e999"}', seen.append)
    assert seen == [] and ws.skipped == 1
    ws.handle(b'{"a": "21.5", "b": "' + b"y" * (MAX_TEXT + 1) + b'"}', seen.append)
    assert seen[0].fields == {"f0": 21.5}
