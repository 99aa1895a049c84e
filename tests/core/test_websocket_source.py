from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import pytest
import voluptuous as vol
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.websocket import (
    SCHEMA,
    WebSocketSource,
    compile_path,
    resolve,
)


class Feed:
    """A WebSocket server that sends each connection the queued messages, then maybe closes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.connections = 0
        self.received: list[str] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        with contextlib.suppress(TimeoutError):
            first = await ws.receive(timeout=0.2)
            if first.type == web.WSMsgType.TEXT:
                self.received.append(first.data)
        batch = self.batches.pop(0) if self.batches else []
        for message in batch:
            await ws.send_str(message)
        if self.batches:  # more to come: drop this connection to force a reconnect
            await ws.close()
            return ws
        async for _ in ws:
            pass
        return ws


@pytest.fixture
async def feed() -> AsyncGenerator[Feed]:
    feed = Feed()
    app = web.Application()
    app.router.add_get("/live", feed.handle)
    feed.server = TestServer(app, host="127.0.0.1")
    await feed.server.start_server()
    yield feed
    await feed.server.close()


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
