"""The agent's client on the wire: TLS, HTTP refusals, redirects, proxies, bad frames, logs.

What the ``websockets`` library does by default and the agent must not: follow a redirect
with the bearer token, take a proxy from the environment, write the upgrade's headers (the
token among them) to a DEBUG log. Every test runs the real client against real servers on
loopback.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from custom_components.fleet_metrics.core.agent.client import AgentClient
from custom_components.fleet_metrics.core.agent.config import ServerConfig
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import Hello, Welcome, encode
from custom_components.fleet_metrics.core.backoff import Backoff
from tests.mosquitto import make_certificates

from .agent_fake_server import TOKEN, FakeServer, until
from .test_client import HELLO, Harness, batch, fast_timing


class RawListener:
    """A TCP listener that answers every HTTP request with ``response`` and counts them."""

    def __init__(self, response: bytes = b"") -> None:
        self.response = response
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> RawListener:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.response)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = await FakeServer().start()
    yield fake
    await fake.stop()


async def running(client: AgentClient) -> asyncio.Task[None]:
    return asyncio.create_task(client.run())


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_the_token_is_never_logged_even_at_debug(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Connect, exchange, lose the connection, reconnect, be refused: all at DEBUG."""
    caplog.set_level(logging.DEBUG)
    harness = Harness(server.url).start()
    try:
        harness.add(1)
        await until(lambda: server.seqs() == [1])
        server.drop()
        harness.add(2)
        await until(lambda: server.seqs() == [1, 2] and server.connections == 2)
        server.token = "fma_another"
        server.drop()
        await until(lambda: harness.client.stats.refused >= 1)
    finally:
        await harness.stop()
    assert any("connection lost" in r.getMessage() for r in caplog.records)
    assert caplog.records  # the client did log at DEBUG; none of it holds the token
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("status", "refused"), [(401, True), (403, True), (404, False), (502, False)]
)
async def test_http_refusals_of_the_upgrade(
    status: int, refused: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """401/403 are a refused token (slow retries, ERROR once); any other status is an outage
    (normal backoff, WARNING once)."""
    listener = await RawListener(
        f"HTTP/1.1 {status} Nope\r\nContent-Length: 0\r\n\r\n".encode()
    ).start()
    harness = Harness(f"ws://127.0.0.1:{listener.port}/api/agent")
    harness.client.timing.backoff = Backoff(initial=0.01, maximum=0.02)
    harness.client.timing.auth_backoff = Backoff(initial=0.01, maximum=0.02)
    harness.start()
    try:
        await until(lambda: len(listener.requests) >= 3)
    finally:
        await harness.stop()
        await listener.stop()
    stats = harness.client.stats
    assert (stats.refused >= 2) is refused
    assert (harness.client.timing.auth_backoff.attempts >= 2) is refused
    assert (harness.client.timing.backoff.attempts >= 2) is not refused
    level = logging.ERROR if refused else logging.WARNING
    assert len([r for r in caplog.records if r.levelno == level]) == 1
    assert f"Bearer {TOKEN}".encode() in listener.requests[0]
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_not_followed(
    status: int, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The token must reach only the configured URL, even when that server points elsewhere."""
    listener = await RawListener(
        f"HTTP/1.1 {status} Moved\r\nLocation: {server.url}\r\nContent-Length: 0\r\n\r\n".encode()
    ).start()
    harness = Harness(f"ws://127.0.0.1:{listener.port}/api/agent")
    harness.start()
    try:
        await until(lambda: len(listener.requests) >= 2)
    finally:
        await harness.stop()
        await listener.stop()
    assert server.connections == 0
    assert any(f"HTTP {status}" in r.getMessage() for r in caplog.records)


async def test_proxy_settings_in_the_environment_are_ignored(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await RawListener(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n").start()
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv(name.upper(), f"http://127.0.0.1:{proxy.port}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    harness = Harness(server.url).start()
    try:
        harness.add(1)
        await until(lambda: server.seqs() == [1])
    finally:
        await harness.stop()
        await proxy.stop()
    assert proxy.requests == []


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("certs")
    make_certificates(folder)
    return folder


@pytest.fixture
async def tls_server(certificates: Path) -> AsyncIterator[tuple[FakeServer, str]]:
    """The fake server's handler behind TLS, with a certificate from a throwaway CA."""
    fake = FakeServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
    app = web.Application()
    app.router.add_get(fake.path, fake._handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield fake, f"wss://127.0.0.1:{runner.addresses[0][1]}{fake.path}"
    for ws in list(fake._sockets):
        await ws.close()
    await runner.cleanup()


async def test_wss_with_the_configured_ca_file(
    tls_server: tuple[FakeServer, str], certificates: Path
) -> None:
    fake, url = tls_server
    outbox = Outbox(100, url)
    config = ServerConfig(url=url, token=TOKEN, ca_file=str(certificates / "ca.crt"))
    client = AgentClient(config, outbox, HELLO, fast_timing())
    task = await running(client)
    try:
        outbox.add(1.0, batch(1))
        client.wake()
        await until(lambda: fake.seqs() == [1] and len(outbox) == 0)
    finally:
        await stopped(task)
    assert fake.headers[0]["Authorization"] == f"Bearer {TOKEN}"


async def test_wss_refuses_a_certificate_it_cannot_verify(
    tls_server: tuple[FakeServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Without the CA file the system's CAs do not know the server: nothing is sent."""
    fake, url = tls_server
    outbox = Outbox(100, url)
    client = AgentClient(ServerConfig(url=url, token=TOKEN), outbox, HELLO, fast_timing())
    task = await running(client)
    try:
        outbox.add(1.0, batch(1))
        client.wake()
        await until(lambda: client.timing.backoff.attempts >= 3)
    finally:
        await stopped(task)
    assert fake.connections == 0
    assert len(outbox) == 1
    lost = [r.getMessage() for r in caplog.records if "connection lost" in r.getMessage()]
    assert len(lost) == 1
    assert "certificate" in lost[0].lower()


Misbehaviour = Callable[[web.WebSocketResponse], Awaitable[None]]


async def binary_frame(ws: web.WebSocketResponse) -> None:
    await ws.send_bytes(encode(Welcome(0)))


async def not_json(ws: web.WebSocketResponse) -> None:
    await ws.send_str("{welcome")


async def hello_instead_of_welcome(ws: web.WebSocketResponse) -> None:
    await ws.send_str(encode(Hello("server", "0", "b")).decode())


async def silence(ws: web.WebSocketResponse) -> None:
    """No welcome within the connect timeout (the handler still answers the close)."""


@pytest.mark.parametrize("misbehave", [binary_frame, not_json, hello_instead_of_welcome, silence])
async def test_a_server_that_breaks_the_protocol_is_left_and_retried(
    misbehave: Misbehaviour, caplog: pytest.LogCaptureFixture
) -> None:
    """Instead of a welcome: the client hangs up, keeps its batches and tries again later."""
    connections = 0

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the hello
        await misbehave(ws)
        await ws.receive()  # until the client hangs up
        return ws

    app = web.Application()
    app.router.add_get("/api/agent", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    harness = Harness(f"ws://127.0.0.1:{runner.addresses[0][1]}/api/agent")
    harness.client.timing.connect_timeout = 0.3
    harness.add(1)
    harness.start()
    try:
        await until(lambda: connections >= 2)
    finally:
        await harness.stop()
        await runner.cleanup()
    assert harness.client.stats.connects == 0
    assert len(harness.outbox) == 1
    assert len([r for r in caplog.records if "connection lost" in r.getMessage()]) == 1
