"""The runner's HTTP server on real sockets: shared streamed renders, gzip, limits, quiet 400s."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from fleet_metrics.http_render import accepts_gzip
from fleet_metrics.http_server import ServerHandle, create_app, start_server
from fleet_metrics.http_stats import HttpStats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.fleet_metrics.core.exporters.prometheus import PrometheusSink
from custom_components.fleet_metrics.core.sample import Sample

TIMEOUT = 10.0  # for anything that should happen at once; a failure, not a measurement


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Conn:
    """One raw HTTP/1.1 connection: the test decides every byte that is sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, path: str, **headers: str) -> Reply:
        self.send(path, **headers)
        return await self.reply()

    def send(self, path: str, **headers: str) -> None:
        lines = [f"GET {path} HTTP/1.1", "Host: test"]
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    async def head(self) -> tuple[int, dict[str, str]]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    async def reply(self) -> Reply:
        status, headers = await self.head()
        if headers.get("transfer-encoding") == "chunked":
            body = b"".join([chunk async for chunk in self.chunks()])
        else:
            length = int(headers.get("content-length", "0"))
            body = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return Reply(status, headers, body)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The chunks of a chunked body as they arrive; IncompleteReadError if it is cut."""
        while True:
            size_line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), TIMEOUT)
            size = int(size_line.split(b";")[0], 16)
            chunk = await asyncio.wait_for(self.reader.readexactly(size + 2), TIMEOUT)
            assert chunk.endswith(b"\r\n")
            if not size:
                return
            yield chunk[:-2]

    async def closed_by_server(self, within: float = TIMEOUT) -> bool:
        """True once the server closed (EOF or reset); False if it stayed open ``within``."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), within):
                pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.close()


@asynccontextmanager
async def serving(
    app: web.Application,
    max_connections: int = 500,
    header_timeout: float = 10.0,
    write_timeout: float = 30.0,
) -> AsyncIterator[ServerHandle]:
    server = await start_server(
        app,
        "127.0.0.1",
        0,
        max_connections=max_connections,
        header_timeout=header_timeout,
        write_timeout=write_timeout,
    )
    try:
        yield server
    finally:
        await server.close()


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def loud(caplog: pytest.LogCaptureFixture) -> list[str]:
    """ERRORs from anywhere, WARNINGs from the server (asyncio's debug-mode slow-callback
    warnings are about the test machine, not the server)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR
        or (r.levelno >= logging.WARNING and r.name.startswith(("aiohttp", "fleet_metrics")))
    ]


def sink_body() -> bytes:
    """A real exposition with label values that need escaping."""
    sink = PrometheusSink()
    for device in range(300):
        tags = {"device": f'plug "{device}"\\', "site": "home\nlab"}
        sink.add(Sample("tasmota_energy", tags, {"power_watts": device * 1.5, "today_kwh": 2}))
    return sink.render().encode()


# --- one render per burst, gzip --------------------------------------------------------


async def test_concurrent_scrapes_share_one_render_and_one_gzip() -> None:
    scrapers = 20
    entered = 0
    renders = 0

    @web.middleware
    async def count_scrapes(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal entered
        entered += request.path == "/metrics"
        return await handler(request)

    def render() -> Iterator[bytes]:
        # Finishes only once every scraper is waiting (or after TIMEOUT): without sharing,
        # each scraper would start a render of its own and the count below would show it.
        nonlocal renders
        renders += 1
        number = renders
        deadline = time.monotonic() + TIMEOUT
        while entered < scrapers and time.monotonic() < deadline:
            time.sleep(0.001)
            yield b""
        yield f"render_number {number}\n".encode() * 1000

    app = create_app(render)
    app.middlewares.append(count_scrapes)
    async with serving(app) as server:
        conns = [await Conn.open(server.port) for _ in range(scrapers)]
        replies = await asyncio.gather(
            *(
                conn.request("/metrics", Accept_Encoding="gzip" if i % 2 else "identity")
                for i, conn in enumerate(conns)
            )
        )
        expected = b"render_number 1\n" * 1000
        for i, reply in enumerate(replies):
            assert reply.status == 200
            if i % 2:
                assert reply.headers["content-encoding"] == "gzip"
                assert gzip.decompress(reply.body) == expected
            else:
                assert "content-encoding" not in reply.headers
                assert reply.body == expected
        assert (server.stats.renders, server.stats.gzips) == (1, 1)
        assert (server.stats.scrapes, server.stats.scrapes_gzip) == (scrapers, scrapers // 2)

        # the burst is over: the next scrape renders anew
        reply = await conns[0].request("/metrics")
        assert reply.body == b"render_number 2\n" * 1000
        assert server.stats.renders == 2
        for conn in conns:
            conn.close()


@pytest.mark.parametrize(
    ("accept_encoding", "gzipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),  # what aiohttp and browsers send
        ("identity;q=1, GZIP;q=0.5", True),
        ("*", True),
        ("deflate", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        (None, False),
    ],
)
async def test_gzip_when_asked_decompresses_to_the_same_bytes(
    accept_encoding: str | None, gzipped: bool
) -> None:
    body = sink_body()
    async with serving(create_app(lambda: body)) as server:
        conn = await Conn.open(server.port)
        headers = {} if accept_encoding is None else {"Accept_Encoding": accept_encoding}
        reply = await conn.request("/metrics", **headers)
        conn.close()
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    assert reply.headers["vary"] == "Accept-Encoding"
    assert int(reply.headers["content-length"]) == len(reply.body)
    if gzipped:
        assert reply.headers["content-encoding"] == "gzip"
        assert len(reply.body) < len(body) / 5
        assert gzip.decompress(reply.body) == body
    else:
        assert "content-encoding" not in reply.headers
        assert reply.body == body


CODINGS = st.sampled_from(["gzip", "x-gzip", "GZip", "*", "deflate", "br", "identity", "zstd"])
WEIGHTS = st.sampled_from([None, "0", "0.0", "0.000", "0.001", "0.5", "1", "1.000", "2", "x"])


def _weight(text: str | None) -> float | None:
    """The reference reading of a qvalue: None when it is not a valid one."""
    if text is None:
        return 1.0
    valid = {"0": 0.0, "0.0": 0.0, "0.000": 0.0, "0.001": 0.001, "0.5": 0.5, "1": 1.0}
    return valid.get(text, 1.0 if text == "1.000" else None)


@given(items=st.lists(st.tuples(CODINGS, WEIGHTS, st.sampled_from(["", " ", "  "])), max_size=6))
@settings(max_examples=300, deadline=None)
def test_accepts_gzip_follows_the_weights(items: list[tuple[str, str | None, str]]) -> None:
    header = ",".join(
        f"{pad}{coding}{pad}" + ("" if q is None else f";{pad}q={q}") for coding, q, pad in items
    )
    weights: dict[str, float] = {}
    for coding, q, _ in items:
        weight = _weight(q)
        name = "gzip" if coding.lower() in ("gzip", "x-gzip") else coding
        if weight is not None:
            weights[name] = max(weights.get(name, 0.0), weight)
    expected = weights["gzip"] > 0 if "gzip" in weights else weights.get("*", 0.0) > 0
    assert accepts_gzip(header) is expected


async def test_a_failed_render_is_one_error_a_500_each_and_the_next_scrape_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    def render() -> Iterator[bytes]:
        nonlocal attempts
        attempts += 1
        for _ in range(50):
            time.sleep(0.001)
            yield b""
        if attempts == 1:
            raise ValueError("broken series")
        yield b"ok 1\n"

    async with serving(create_app(render)) as server:
        conns = [await Conn.open(server.port) for _ in range(5)]
        replies = await asyncio.gather(*(conn.request("/metrics") for conn in conns))
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.status for r in replies] == [500] * 5
        assert server.stats.render_errors == 1
        assert len(errors) == 1 and "rendering /metrics failed" in errors[0].getMessage()
        conn = await Conn.open(server.port)
        assert (await conn.request("/metrics")).body == b"ok 1\n"
        for c in [*conns, conn]:
            c.close()


async def test_a_render_in_pieces_lets_healthz_answer_before_it_ends() -> None:
    healthz_done = asyncio.Event()
    seen_during_render: list[bool] = []
    started: list[bool] = []

    def render() -> Iterator[bytes]:
        # Keeps going until /healthz was answered (or TIMEOUT): only possible if the loop
        # gets control between pieces.
        started.append(True)
        deadline = time.monotonic() + TIMEOUT
        while not healthz_done.is_set() and time.monotonic() < deadline:
            time.sleep(0.001)
            yield b"x 1\n"
        seen_during_render.append(healthz_done.is_set())
        yield b"done 1\n"

    async with serving(create_app(render)) as server:
        scraper, checker = await Conn.open(server.port), await Conn.open(server.port)
        scrape = asyncio.create_task(scraper.request("/metrics"))
        await until(lambda: bool(started), "the render to start")
        assert (await checker.request("/healthz")).body == b"ok\n"
        healthz_done.set()
        reply = await scrape
        assert reply.body.endswith(b"done 1\n")
        assert seen_during_render == [True]
        scraper.close()
        checker.close()


# --- streaming ---------------------------------------------------------------------------


def numbered_pieces(render_number: int, count: int = 30) -> Iterator[bytes]:
    """Pieces of a body several batches long, each line distinct, so a loss or reorder shows."""
    for piece in range(count):
        yield "".join(
            f'streamed{{render="{render_number}",piece="{piece}",line="{line}"}} {line}\n'
            for line in range(1500)
        ).encode()


def counting_scrapes(app: web.Application) -> list[int]:
    """``[n]``: how many /metrics requests reached the handlers so far."""
    entered = [0]

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        entered[0] += request.path == "/metrics"
        return await handler(request)

    app.middlewares.append(count)
    return entered


def wait_in_render(done: Callable[[], bool]) -> Iterator[bytes]:
    """Empty pieces until ``done()`` (or TIMEOUT): the loop runs between them."""
    deadline = time.monotonic() + TIMEOUT
    while not done() and time.monotonic() < deadline:
        time.sleep(0.001)
        yield b""


async def test_a_big_render_streams_one_gzip_and_the_same_bytes_to_every_scraper() -> None:
    scrapers = 4
    first_chunk = asyncio.Event()
    seen_mid_render: list[bool] = []

    def render() -> Iterator[bytes]:
        yield from wait_in_render(lambda: entered[0] == scrapers)
        pieces = numbered_pieces(1)
        yield from itertools.islice(pieces, 10)  # more than a batch
        # the scrapers have bytes before the render has made the rest
        yield from wait_in_render(first_chunk.is_set)
        seen_mid_render.append(first_chunk.is_set())
        yield from pieces

    async def scrape(conn: Conn, gzipped: bool) -> tuple[dict[str, str], bytes]:
        conn.send("/metrics", Accept_Encoding="gzip" if gzipped else "identity")
        status, headers = await conn.head()
        assert status == 200
        chunks = []
        async for chunk in conn.chunks():
            chunks.append(chunk)
            first_chunk.set()
        return headers, b"".join(chunks)

    app = create_app(render)
    entered = counting_scrapes(app)
    async with serving(app) as server:
        conns = [await Conn.open(server.port) for _ in range(scrapers)]
        replies = await asyncio.gather(*(scrape(c, i % 2 == 1) for i, c in enumerate(conns)))
        expected = b"".join(numbered_pieces(1))
        assert seen_mid_render == [True]
        for i, (headers, body) in enumerate(replies):
            assert headers["transfer-encoding"] == "chunked"
            assert "content-length" not in headers
            if i % 2:
                assert headers["content-encoding"] == "gzip"
                assert gzip.decompress(body) == expected
            else:
                assert "content-encoding" not in headers
                assert body == expected
        assert (server.stats.renders, server.stats.gzips) == (1, 1)
        assert (server.stats.scrapes, server.stats.scrapes_gzip) == (scrapers, scrapers // 2)
        for conn in conns:
            conn.close()


async def test_a_scraper_leaving_mid_stream_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    left = asyncio.Event()

    def render() -> Iterator[bytes]:
        yield from wait_in_render(lambda: entered[0] >= 2)
        pieces = numbered_pieces(1)
        yield from itertools.islice(pieces, 10)
        yield from wait_in_render(left.is_set)  # the rest is written after the peer left
        yield from pieces

    app = create_app(render)
    entered = counting_scrapes(app)
    async with serving(app) as server:
        leaver, stayer = await Conn.open(server.port), await Conn.open(server.port)
        leaver.send("/metrics", Accept_Encoding="gzip")
        staying = asyncio.create_task(stayer.request("/metrics", Accept_Encoding="gzip"))
        assert (await leaver.head())[0] == 200
        await anext(aiter(leaver.chunks()))
        leaver.writer.transport.abort()  # a reset, mid-body
        await until(lambda: server.stats.connections_open == 1, "the leaver's close seen")
        left.set()
        expected = b"".join(numbered_pieces(1))
        assert gzip.decompress((await staying).body) == expected
        assert (server.stats.scrapes, server.stats.renders) == (1, 1)
        # and the next scrape is a fresh render, served whole
        assert (await stayer.request("/metrics")).body == expected
        assert (server.stats.scrapes, server.stats.renders) == (2, 2)
        stayer.close()
    assert loud(caplog) == []


async def test_a_render_whose_scrapers_all_left_stops() -> None:
    pulled: list[int] = []

    def render() -> Iterator[bytes]:
        for number, piece in enumerate(numbered_pieces(1, count=100)):
            pulled.append(number)
            time.sleep(0.001)
            yield piece

    async with serving(create_app(render)) as server:
        conn = await Conn.open(server.port)
        conn.send("/metrics", Accept_Encoding="identity")
        assert (await conn.head())[0] == 200
        conn.writer.transport.abort()
        await until(lambda: server.stats.connections_open == 0, "its close seen")
        await until(lambda: server.stats.renders == 1, "the render to end")
        assert len(pulled) < 100
        assert server.stats.scrapes == 0


async def test_a_scrape_arriving_mid_stream_gets_the_next_render_whole() -> None:
    renders: list[int] = []
    running: list[bool] = []
    late_waiting = asyncio.Event()

    def render() -> Iterator[bytes]:
        assert not running, "renders overlap"
        running.append(True)
        renders.append(len(renders) + 1)
        pieces = numbered_pieces(renders[-1])
        yield from itertools.islice(pieces, 10)
        if renders[-1] == 1:
            yield from wait_in_render(late_waiting.is_set)
        yield from pieces
        running.clear()

    app = create_app(render)
    entered = counting_scrapes(app)
    async with serving(app) as server:
        first, late = await Conn.open(server.port), await Conn.open(server.port)
        first.send("/metrics")
        assert (await first.head())[0] == 200  # the stream has begun
        late.send("/metrics", Accept_Encoding="gzip")
        await until(lambda: entered[0] == 2, "the late scrape to wait")
        late_waiting.set()
        rest = b"".join([chunk async for chunk in first.chunks()])
        late_reply = await late.reply()
        assert b"".join(numbered_pieces(1)).endswith(rest)  # (the head read took a chunk)
        assert gzip.decompress(late_reply.body) == b"".join(numbered_pieces(2))
        assert renders == [1, 2] and server.stats.renders == 2
        first.close()
        late.close()


async def test_a_render_failing_mid_stream_cuts_its_scrapers_and_the_next_one_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    def render() -> Iterator[bytes]:
        nonlocal attempts
        attempts += 1
        yield from itertools.islice(numbered_pieces(attempts), 10)
        if attempts == 1:
            yield from wait_in_render(sent.is_set)
            raise ValueError("broken series")
        yield b"ok 1\n"

    sent = asyncio.Event()
    async with serving(create_app(render)) as server:
        conn = await Conn.open(server.port)
        conn.send("/metrics", Accept_Encoding="gzip")
        assert (await conn.head())[0] == 200
        chunks = conn.chunks()
        await anext(chunks)
        sent.set()
        # a truncated body, never a clean end that would pass for a whole exposition
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError)):
            async for _ in chunks:
                pass
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "rendering /metrics failed" in errors[0].getMessage()
        assert server.stats.render_errors == 1
        again = await Conn.open(server.port)
        reply = await again.request("/metrics")
        assert reply.body == b"".join(itertools.islice(numbered_pieces(2), 10)) + b"ok 1\n"
        conn.close()
        again.close()


async def test_head_gets_the_headers_without_a_render_and_the_connection_stays_usable() -> None:
    renders = 0

    def render() -> Iterator[bytes]:
        nonlocal renders
        renders += 1
        yield from numbered_pieces(renders, count=5)

    async with serving(create_app(render)) as server:
        conn = await Conn.open(server.port)
        conn.writer.write(b"HEAD /metrics HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
        status, headers = await conn.head()
        assert (status, headers["content-encoding"]) == (200, "gzip")
        # no body bytes followed the head: the next reply on the connection parses cleanly
        reply = await conn.request("/metrics")
        assert reply.body == b"".join(numbered_pieces(1, count=5))
        assert renders == 1
        conn.close()


# --- header timeout ----------------------------------------------------------------------


async def test_silent_and_trickling_clients_are_closed_while_healthz_answers() -> None:
    timeout = 0.3
    async with serving(create_app(lambda: b""), header_timeout=timeout) as server:
        started = time.monotonic()
        silent = await Conn.open(server.port)
        trickler = await Conn.open(server.port)
        healthy = await Conn.open(server.port)

        async def trickle() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 1000:
                trickler.writer.write(bytes([byte]))
                await asyncio.sleep(0.02)

        trickling = asyncio.create_task(trickle())
        closed = asyncio.gather(silent.closed_by_server(), trickler.closed_by_server())
        # meanwhile a well-behaved client on a keep-alive connection is served every time
        while not closed.done():
            assert (await healthy.request("/healthz")).status == 200
            await asyncio.sleep(0.02)
        assert list(await closed) == [True, True]
        elapsed = time.monotonic() - started
        assert timeout <= elapsed < TIMEOUT
        trickling.cancel()
        assert server.stats.header_timeouts == 2
        assert (await healthy.request("/healthz")).status == 200
        await until(lambda: server.stats.connections_open == 1, "the two closed ones released")
        for conn in (silent, trickler, healthy):
            conn.close()


async def test_next_request_head_on_a_keepalive_connection_has_the_same_deadline() -> None:
    timeout = 0.3
    async with serving(create_app(lambda: b""), header_timeout=timeout) as server:
        idle = await Conn.open(server.port)
        slow = await Conn.open(server.port)
        assert (await idle.request("/healthz")).status == 200
        assert (await slow.request("/healthz")).status == 200
        # idle after a response: not a head timeout (aiohttp's keep-alive timer owns it)
        await asyncio.sleep(timeout * 3)
        assert (await idle.request("/healthz")).status == 200
        # but the first byte of a next request starts the clock
        slow.writer.write(b"GET /hea")
        assert await slow.closed_by_server()
        assert server.stats.header_timeouts == 1
        idle.close()
        slow.close()


async def test_slow_handlers_and_websockets_outlive_the_header_timeout() -> None:
    timeout = 0.2

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(timeout * 4)
        return web.Response(text="slow\n")

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    app = create_app(lambda: b"")
    app.router.add_get("/slow", slow)
    app.router.add_get("/ws", echo)
    async with serving(app, header_timeout=timeout) as server:
        conn = await Conn.open(server.port)
        assert (await conn.request("/slow")).body == b"slow\n"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(f"http://127.0.0.1:{server.port}/ws") as ws,
        ):
            for round_ in range(3):
                await asyncio.sleep(timeout * 2)
                await ws.send_str(f"still here {round_}")
                assert (await ws.receive(timeout=TIMEOUT)).data == f"still here {round_}"
        assert server.stats.header_timeouts == 0
        conn.close()


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout() -> None:
    body = bytes(range(256)) * (64 * 1024)  # 16 MiB: more than the kernel buffers hold
    async with serving(create_app(lambda: body), write_timeout=0.5) as server:
        # a reader that takes it all is not cut, though the buffer fills on the way
        reader = await Conn.open(server.port)
        assert (await reader.request("/metrics", Accept_Encoding="identity")).body == body
        # one that never reads is
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", server.port))
        stuck.sendall(b"GET /metrics HTTP/1.1\r\nHost: test\r\nAccept-Encoding: identity\r\n\r\n")
        await until(lambda: server.stats.write_timeouts == 1, "the write timeout")
        await until(lambda: server.stats.connections_open == 1, "its slot released")
        assert (await reader.request("/healthz")).status == 200
        stuck.close()
        reader.close()


# --- connection cap ----------------------------------------------------------------------


async def test_connections_beyond_the_cap_are_refused_counted_and_released() -> None:
    async with serving(create_app(lambda: b""), max_connections=3) as server:
        first = await Conn.open(server.port)
        assert (await first.request("/healthz")).status == 200
        others = [await Conn.open(server.port) for _ in range(2)]
        await until(lambda: server.stats.connections_open == 3, "three open")

        for attempt in range(1, 4):
            refused = await Conn.open(server.port)
            assert await refused.closed_by_server()
            refused.close()
            assert server.stats.connections_refused == attempt
        assert server.stats.connections_open == 3
        assert (await first.request("/healthz")).status == 200  # the existing client works

        others[0].close()
        await until(lambda: server.stats.connections_open == 2, "a slot released")
        newcomer = await Conn.open(server.port)
        assert (await newcomer.request("/healthz")).status == 200
        for conn in (first, others[1], newcomer):
            conn.close()


async def test_refused_connections_are_answered_503() -> None:
    async with serving(create_app(lambda: b""), max_connections=1) as server:
        holder = await Conn.open(server.port)
        await until(lambda: server.stats.connections_open == 1, "one open")
        refused = await Conn.open(server.port)  # sends nothing, so nothing unread on close
        reply = await refused.reply()
        assert (reply.status, reply.headers["connection"]) == (503, "close")
        holder.close()
        refused.close()


# --- malformed requests ------------------------------------------------------------------

MALFORMED = {
    "tls hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
    "bad request line": b"GET /metrics HTTP/1.1 extra\r\nHost: test\r\n\r\n",
    "nul in path": b"GET /met\x00rics HTTP/1.1\r\nHost: test\r\n\r\n",
    "bad version": b"GET /metrics HTTP/9.Z\r\nHost: test\r\n\r\n",
    "oversized header": b"GET /metrics HTTP/1.1\r\nHost: test\r\nX-Big: "
    + b"a" * 20_000
    + b"\r\n\r\n",
    "oversized line": b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
    "header without colon": b"GET /metrics HTTP/1.1\r\nHost test\r\n\r\n",
    "bad content length": b"POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: -5\r\n\r\n",
}


@pytest.mark.parametrize("after_a_good_request", [False, True])
@pytest.mark.parametrize("name", sorted(MALFORMED))
async def test_malformed_requests_get_400_and_no_error_log(
    name: str, after_a_good_request: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serving(create_app(lambda: b"")) as server:
        conn = await Conn.open(server.port)
        if after_a_good_request:  # aiohttp logs these with a traceback, not only the first
            assert (await conn.request("/healthz")).status == 200
        conn.writer.write(MALFORMED[name])
        reply = await conn.reply()
        conn.close()
        assert reply.status == 400
        assert server.stats.bad_requests == 1
        check = await Conn.open(server.port)
        assert (await check.request("/healthz")).status == 200
        check.close()
    assert loud(caplog) == []
    lines = [r for r in caplog.records if r.name.startswith("fleet_metrics.http_server")]
    assert len(lines) == 1 and lines[0].levelno == logging.DEBUG and lines[0].exc_info is None


@pytest.fixture
async def quiet_server() -> AsyncIterator[ServerHandle]:
    async with serving(create_app(lambda: b"m 1\n"), header_timeout=0.5) as server:
        yield server


@given(prefix=st.sampled_from([b"", b"GET /metrics HTTP/1.1\r\n", b"GET "]), junk=st.binary())
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
async def test_arbitrary_bytes_never_log_an_error_nor_stop_the_server(
    quiet_server: ServerHandle, caplog: pytest.LogCaptureFixture, prefix: bytes, junk: bytes
) -> None:
    conn = await Conn.open(quiet_server.port)
    conn.writer.write(prefix + junk + b"\r\n\r\n")
    # answered, closed, or still waiting for the rest of a head: never an ERROR
    with suppress(TimeoutError, ConnectionError):
        await asyncio.wait_for(conn.reader.read(65536), 0.05)
    conn.close()
    check = await Conn.open(quiet_server.port)
    assert (await check.request("/healthz")).status == 200
    check.close()
    assert loud(caplog) == []


async def test_close_stops_listening_and_counts_are_plain_numbers() -> None:
    server = await start_server(create_app(lambda: b""), "127.0.0.1", 0)
    conn = await Conn.open(server.port)
    assert (await conn.request("/healthz")).status == 200
    await server.close()
    assert await conn.closed_by_server()
    with pytest.raises(ConnectionRefusedError):
        await Conn.open(server.port)
    assert isinstance(server.stats, HttpStats)
    assert server.stats.connections_open == 0
    assert server.stats.connections_accepted == 1
