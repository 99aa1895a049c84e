"""A small server that speaks the agent protocol on loopback, for the agent's own tests.

Applies each (boot_id, seq) once, answers ``welcome`` with what it has applied and acks
cumulatively, like the real hub; and it can refuse, stop acking, delay acks, drop every
connection and restart on the same port, which the real hub should never do on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from custom_components.fleet_metrics.core.agent.protocol import (
    MAX_MESSAGE_BYTES,
    SERIES,
    Ack,
    Batch,
    Declare,
    Hello,
    ProtocolError,
    SeriesTable,
    Welcome,
    decode,
    encode,
)

TOKEN = "fma_dGVzdC10b2tlbi1mb3ItdGhlLWFnZW50LWNsaWVudA"


@dataclass
class FakeServer:
    token: str = TOKEN
    path: str = "/api/agent"
    ack: bool = True  # False: receive and apply, never ack
    apply: bool = True  # False: receive and throw away (a crash before the commit)
    ack_delay: float = 0.0
    close_code: int | None = None  # close every new connection with this code after hello
    series: bool = False  # offer declared series, as the real hub does
    port: int = 0
    applied: dict[str, int] = field(default_factory=dict)  # boot_id -> highest applied seq
    batches: list[Batch] = field(default_factory=list)  # applied, in order, once each
    received: list[int] = field(default_factory=list)  # every seq that arrived
    frame_sizes: list[int] = field(default_factory=list)
    frame_kinds: list[str] = field(default_factory=list)  # "rows", "samples" or "series"
    hellos: list[Hello] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    query_strings: list[str] = field(default_factory=list)
    duplicates: int = 0
    gaps: int = 0
    connections: int = 0
    _runner: web.AppRunner | None = None
    _sockets: set[web.WebSocketResponse] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> FakeServer:
        app = web.Application()
        app.router.add_get(self.path, self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def drop(self) -> None:
        """Cut every connection without a close frame, as a crash does."""
        for ws in list(self._sockets):
            transport = ws._req.transport if ws._req is not None else None
            if transport is not None:
                transport.abort()

    def seqs(self) -> list[int]:
        return [batch.seq for batch in self.batches]

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        self.headers.append(dict(request.headers))
        self.query_strings.append(request.query_string)
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES + 1, heartbeat=None)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await self._talk(request, ws)
        finally:
            self._sockets.discard(ws)
        return ws

    async def _talk(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            await ws.close(code=4001, message=b"not authorised")
            return
        first = await ws.receive()
        hello = decode(first.data)
        assert isinstance(hello, Hello)
        self.hellos.append(hello)
        if self.close_code is not None:
            await ws.close(code=self.close_code, message=b"refused")
            return
        boot = hello.boot_id
        offered = (SERIES,) if self.series else ()
        await ws.send_str(encode(Welcome(self.applied.get(boot, 0), offered)).decode())
        table = SeriesTable()
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            self.frame_sizes.append(len(msg.data.encode()))
            try:
                batch = decode(msg.data, table if self.series else None)
            except ProtocolError as err:
                await ws.close(code=err.code, message=err.reason.encode()[:120])
                return
            if isinstance(batch, Declare):
                self.frame_kinds.append("series")
                table.declare(batch)
                continue
            assert isinstance(batch, Batch)
            self.frame_kinds.append("rows" if '"rows"' in msg.data else "samples")
            self.received.append(batch.seq)
            if not self.apply:
                continue
            last = self.applied.get(boot, 0)
            if batch.seq <= last:
                self.duplicates += 1
            else:
                self.gaps += batch.seq - last - 1
                self.applied[boot] = batch.seq
                self.batches.append(batch)
            if self.ack:
                if self.ack_delay:
                    await asyncio.sleep(self.ack_delay)
                await ws.send_str(encode(Ack(self.applied[boot])).decode())


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
