from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import voluptuous as vol

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.websocket import (
    SCHEMA,
    WebSocketSource,
    compile_path,
    resolve,
)
from tests.websocket_feed import Feed


def source(feed: Feed, **extra: Any) -> WebSocketSource:
    assert feed.server is not None
    url = str(feed.server.make_url("/live")).replace("http://", "ws://")
    config = vol.Schema(SCHEMA)(
        {
            "url": url,
            "fields": {"temperature_celsius": "data.sensors[1].t", "ok": "data.ok"},
            "tags": {"station": "data.station"},
            **extra,
        }
    )
    return WebSocketSource("weather", config)


def test_json_paths() -> None:
    assert compile_path("a.b[2].c") == ("a", "b", 2, "c")
    document = {"a": {"b": [0, 1, {"c": 5}]}}
    assert resolve(document, compile_path("a.b[2].c")) == 5
    assert resolve(document, compile_path("a.b[9].c")) is None
    assert resolve(document, compile_path("a.x.y")) is None
    with pytest.raises(ValueError, match="bad JSON path"):
        compile_path("a..[x]")


def test_schema_refuses_bad_paths_and_urls() -> None:
    with pytest.raises(vol.Invalid):
        vol.Schema(SCHEMA)({"url": "http://x", "fields": {"a": "b"}})
    with pytest.raises(vol.Invalid):
        vol.Schema(SCHEMA)({"url": "ws://x", "fields": {"a": "b[x"}})
    with pytest.raises(vol.Invalid):
        vol.Schema(SCHEMA)({"url": "ws://x", "fields": {}})


async def test_messages_become_samples_and_the_source_reconnects(feed: Feed) -> None:
    good = '{"data":{"station":"roof","ok":true,"sensors":[{"t":1},{"t":"21.5"}]}}'
    feed.batches = [
        [good, "not json", '{"data":{"other":1}}'],
        ['{"data":{"station":"roof","sensors":[{},{"t":22}]}}'],
    ]
    ws_source = source(feed, send_on_connect='{"subscribe":"all"}')
    seen: list[Sample] = []
    task = asyncio.create_task(ws_source.run(seen.append))
    try:
        async with asyncio.timeout(10):
            while len(seen) < 2:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert seen[0].measurement == "weather"
    assert seen[0].tags == {"source": "weather", "station": "roof"}
    assert seen[0].fields == {"temperature_celsius": 21.5, "ok": True}
    assert seen[1].fields == {"temperature_celsius": 22}
    assert feed.connections == 2
    assert feed.received == ['{"subscribe":"all"}'] * 2
    assert ws_source.stats.parse_errors == 1
    assert ws_source.skipped == 1
    assert ws_source.stats.messages == 4
