"""One render of ``/metrics`` per scrape burst, streamed to every scraper of the burst.

The render stays on the event loop, on purpose: the Prometheus sink is written on the loop by
every source, and rendering walks (and prunes expired series from) the very dicts those writes
change, so a render in a thread would race them ("dictionary changed size during iteration",
or half-updated output). For the same reason renders never overlap: one runs at a time.

A render hands its text over in pieces (any iterable of ``bytes``, or one ``bytes``). The
pieces are not joined into one body: they are gathered into batches of about
``BATCH_BYTES`` and each batch is written to every scraper of the burst as it is made
(chunked transfer encoding), so a scrape of tens of megabytes holds one batch, not the body
and its gzip form. Scrapers that asked for gzip share one incremental gzip stream
(``zlib.compressobj``), compressed in the default executor (zlib releases the GIL), once per
render however many asked. Between pieces the loop gets control back every
``slice_seconds``, and every write waits for its scrapers' send buffers to drain, so
``/healthz`` and the sources keep running during a big scrape.

A burst is open until its first batch is written: a scrape that arrives before then joins
it and gets the whole stream; one that arrives later waits for the next render, which starts
as soon as this one ends. A scraper that goes away mid-stream is dropped from the burst and
the others go on (when none is left, the render stops). The slowest reader paces the burst;
one that stops reading is cut by the server's write timeout. A render that raises before the
first batch is answered 500 to every scraper of the burst; after it, the headers are sent, so
each connection is aborted and the scraper sees a truncated body, not a partial exposition
taken for a whole one.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiohttp import web

from .http_stats import HttpStats

_LOGGER = logging.getLogger(__name__)

Render = Callable[[], bytes | Iterable[bytes]]

SLICE_SECONDS = 0.005
BATCH_BYTES = 256 * 1024  # written (and compressed) at a time; bounds what a scrape holds
# Exposition text compresses about 11x at level 1; higher levels save a few percent more
# for twice the CPU, which small hosts running this do not have to spare.
GZIP_LEVEL = 1
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip container, as Content-Encoding: gzip expects

_QVALUE = re.compile(r"\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$", re.IGNORECASE)


class RenderFailed(Exception):
    """The render raised before anything was sent; logged once, however many scrapes waited."""


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value (RFC 9110 12.5.3) admits gzip.

    ``gzip`` (or its alias ``x-gzip``) with a non-zero weight, or else ``*`` with one; a
    coding whose weight is not a valid qvalue is ignored.
    """
    gzip_q: float | None = None
    star_q: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        weight = 1.0
        for param in params:
            if "=" in param and param.split("=", 1)[0].strip().lower() == "q":
                match = _QVALUE.match(param)
                weight = float(match.group(1)) if match else -1.0
        if weight < 0:
            continue
        if coding in ("gzip", "x-gzip"):
            gzip_q = weight if gzip_q is None else max(gzip_q, weight)
        elif coding == "*":
            star_q = weight if star_q is None else max(star_q, weight)
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


@dataclass(eq=False, slots=True)
class Scrape:
    """One waiting scraper: its request, the response to stream into, and when it is over."""

    request: web.Request
    response: web.StreamResponse
    gzip: bool
    done: asyncio.Future[None]
    gone: bool = False  # the peer went away, or its handler was cancelled


@dataclass(slots=True)
class _Burst:
    scrapes: list[Scrape] = field(default_factory=list)
    open: bool = True  # nothing written yet: newcomers may still join


class SharedRender:
    """Streams one ``render`` to all the scrapes waiting at the same time."""

    def __init__(
        self, render: Render, stats: HttpStats, slice_seconds: float = SLICE_SECONDS
    ) -> None:
        self._render = render
        self._stats = stats
        self._slice = slice_seconds
        self._current: _Burst | None = None  # being rendered
        self._next: _Burst | None = None  # waiting for the current one to end
        self._tasks: set[asyncio.Task[None]] = set()

    async def serve(self, scrape: Scrape) -> None:
        """Stream the burst's render into ``scrape.response``; raises ``RenderFailed``.

        Returns once the body is written (or the peer went away, or the connection was
        aborted after a late failure); the caller returns the response to aiohttp, which ends it.
        """
        current = self._current
        if current is not None and current.open:
            current.scrapes.append(scrape)
        elif current is None:
            self._current = burst = _Burst([scrape])
            self._start(burst)
        else:
            if self._next is None:
                self._next = _Burst()
            self._next.scrapes.append(scrape)
        try:
            await scrape.done
        except asyncio.CancelledError:
            scrape.gone = True
            raise

    def _start(self, burst: _Burst) -> None:
        task = asyncio.get_running_loop().create_task(self._run(burst))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, burst: _Burst) -> None:
        try:
            await self._stream(burst)
        finally:
            for scrape in burst.scrapes:
                if not scrape.done.done():
                    scrape.done.set_result(None)
            self._current, self._next = self._next, None
            if self._current is not None:
                self._start(self._current)

    async def _stream(self, burst: _Burst) -> None:
        start = time.perf_counter()
        writer = _BurstWriter(burst, self._stats)
        try:
            # Scrapes whose bytes came in the same I/O batch are parsed in the next loop
            # turn; one turn here lets them join this render instead of queueing for one.
            await asyncio.sleep(0)
            result = self._render()
            if isinstance(result, bytes):
                result = (result,)
            clock = time.perf_counter
            deadline = clock() + self._slice
            for piece in result:
                if piece:
                    await writer.add(piece)
                    if writer.abandoned:
                        return  # every scraper went away: the rest would go to nobody
                if clock() >= deadline:
                    await asyncio.sleep(0)
                    deadline = clock() + self._slice
            await writer.finish()
        except Exception:
            self._stats.render_errors += 1
            _LOGGER.exception("rendering /metrics failed")
            writer.fail()
        except BaseException:
            writer.abort()
            raise
        finally:
            self._stats.renders += 1
            self._stats.render_seconds += time.perf_counter() - start - writer.flush_seconds


class _BurstWriter:
    """Batches a render's pieces and writes each batch to every scraper still there."""

    def __init__(self, burst: _Burst, stats: HttpStats) -> None:
        self._burst = burst
        self._stats = stats
        self._pending: list[bytes] = []
        self._size = 0
        self._gzip: zlib._Compress | None = None
        self._started = False
        self.flush_seconds = 0.0  # compressing, and waiting for the scrapers to take the bytes

    @property
    def abandoned(self) -> bool:
        return self._started and all(s.gone for s in self._burst.scrapes)

    async def add(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._size += len(piece)
        if self._size >= BATCH_BYTES:
            await self._flush(final=False)

    async def finish(self) -> None:
        await self._flush(final=True)

    def fail(self) -> None:
        """The render raised: 500 if nothing was sent yet, else cut every connection."""
        self._burst.open = False
        for scrape in self._burst.scrapes:
            if scrape.done.done():
                continue
            if self._started:
                self._abort(scrape)
                scrape.done.set_result(None)
            else:
                scrape.done.set_exception(RenderFailed())

    def abort(self) -> None:
        self._burst.open = False
        for scrape in self._burst.scrapes:
            if self._started:
                self._abort(scrape)
            if not scrape.done.done():
                scrape.done.cancel()

    @staticmethod
    def _abort(scrape: Scrape) -> None:
        transport = scrape.request.transport
        if transport is not None:
            transport.abort()

    async def _flush(self, final: bool) -> None:
        start = time.perf_counter()
        try:
            await self._write_batch(final)
        finally:
            self.flush_seconds += time.perf_counter() - start

    async def _write_batch(self, final: bool) -> None:
        body = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        first = not self._started
        if first:
            self._started = True
            self._burst.open = False  # from here on, newcomers wait for the next render
            if any(s.gzip for s in self._burst.scrapes):
                self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
                self._stats.gzips += 1
        scrapes = [s for s in self._burst.scrapes if not s.gone]
        zipped = b""
        if any(s.gzip for s in scrapes):  # not once every gzip scraper has left
            zipped = await self._compress(body, final)
        if first:
            if final:  # the whole body in one batch: sent with its length, not chunked
                for scrape in scrapes:
                    scrape.response.content_length = len(zipped if scrape.gzip else body)
            await asyncio.gather(*(self._prepare_one(s) for s in scrapes))
        await asyncio.gather(
            *(self._write(s, zipped if s.gzip else body) for s in scrapes if not s.gone)
        )

    async def _prepare_one(self, scrape: Scrape) -> None:
        try:
            await scrape.response.prepare(scrape.request)
        except ConnectionError:
            self._gone(scrape)

    async def _write(self, scrape: Scrape, data: bytes) -> None:
        if not data:
            return
        try:
            await scrape.response.write(data)
        except ConnectionError:
            self._gone(scrape)

    @staticmethod
    def _gone(scrape: Scrape) -> None:
        scrape.gone = True
        if not scrape.done.done():
            scrape.done.set_result(None)

    async def _compress(self, body: bytes, final: bool) -> bytes:
        compressor = self._gzip
        assert compressor is not None  # made at prepare when any scraper asked for gzip
        start = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                None, _compress_step, compressor, body, final
            )
        finally:
            self._stats.gzip_seconds += time.perf_counter() - start


def _compress_step(compressor: zlib._Compress, body: bytes, final: bool) -> bytes:
    data = compressor.compress(body)
    return data + compressor.flush() if final else data
