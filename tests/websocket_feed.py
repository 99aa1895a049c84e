"""A real aiohttp WebSocket server that feeds queued JSON messages to each connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer


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
