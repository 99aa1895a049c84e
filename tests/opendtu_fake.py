"""A real aiohttp server that behaves like an OpenDTU, replaying recorded payloads."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

FIXTURES = Path(__file__).parent / "fixtures" / "opendtu"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@dataclass
class FakeOpenDtu:
    """What the fake answers; tests change these fields while it runs."""

    system: str = field(default_factory=lambda: fixture_text("system_status.json"))
    network: str | None = field(default_factory=lambda: fixture_text("network_status.json"))
    overview: str = field(default_factory=lambda: fixture_text("livedata_status_overview.json"))
    # serial -> ?inv= body; a serial not listed answers the "unknown serial" body
    details: dict[str, str] = field(default_factory=dict)
    password: str | None = None
    # path -> (status, body) served instead of the normal answer
    failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    websocket: bool = True
    ws_messages: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    requests: list[str] = field(default_factory=list)
    server: TestServer | None = None
    sockets: set[web.WebSocketResponse] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def _authorized(self, request: web.Request) -> bool:
        if self.password is None:
            return True
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"admin:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if not self._authorized(request):
            return web.Response(status=401, text="Unauthorized")
        if request.path in self.failures:
            status, body = self.failures[request.path]
            return web.Response(status=status, text=body, content_type="application/json")
        if request.path == "/api/system/status":
            return _json(self.system)
        if request.path == "/api/network/status" and self.network is not None:
            return _json(self.network)
        if request.path == "/api/livedata/status":
            serial = request.query.get("inv")
            if serial is None:
                return _json(self.overview)
            return _json(
                self.details.get(serial, fixture_text("livedata_status_inv_unknown_serial.json"))
            )
        if request.path == "/livedata" and self.websocket:
            return await self._live(request)
        return web.Response(status=404, text="Not Found")

    async def _live(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.add(ws)

        async def pump() -> None:
            while True:
                await ws.send_str(await self.ws_messages.get())

        pump_task = asyncio.create_task(pump())
        try:
            async for _ in ws:  # the DTU ignores what clients send; this waits for close
                pass
        finally:
            self.sockets.discard(ws)
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await pump_task
        return ws

    async def drop_live_clients(self) -> None:
        """Close every live WebSocket, as a rebooting DTU would."""
        for ws in list(self.sockets):
            await ws.close()

    async def close(self) -> None:
        await self.drop_live_clients()
        if self.server is not None:
            await self.server.close()


def _json(body: str) -> web.Response:
    return web.Response(text=body, content_type="application/json")


async def start_fake(fake: FakeOpenDtu) -> FakeOpenDtu:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    return fake


@pytest.fixture
async def opendtu() -> AsyncGenerator[FakeOpenDtu]:
    """An OpenDTU v26 with one HM-800 that the overview lists in summary only."""
    hm800 = fixture_text("livedata_status_inverter_hm800.json")
    fake = FakeOpenDtu(
        overview=_overview_of(hm800),
        details={"114182345678": hm800},
    )
    await start_fake(fake)
    yield fake
    await fake.close()


def _overview_of(detail: str) -> str:
    """The v24.2+ overview the DTU would send for a detail body: channels removed."""
    body = json.loads(detail)
    for inverter in body["inverters"]:
        for key in ("AC", "DC", "INV", "events"):
            inverter.pop(key, None)
    return json.dumps(body, ensure_ascii=False)
