"""One render of ``/metrics`` per scrape burst, and one gzip body, shared by every waiting scraper.

The render stays on the event loop, on purpose: the Prometheus sink is written on the loop by
every source, and rendering walks (and prunes expired series from) the very dicts those writes
change, so a render in a thread would race them ("dictionary changed size during iteration",
or half-updated output). Instead, scrapes that arrive while a render is running wait for it
and get the same bytes; a scrape arriving after it finished starts a fresh one. A render may
hand its text over in pieces (any iterable of ``bytes``): between pieces the loop gets control
back every ``slice_seconds``, so ``/healthz`` and the sources keep running during a big
render; the waiting scrapers are then woken a batch per loop turn, since each writes its
response in the turn it wakes in. Compressing works on immutable ``bytes`` and zlib releases
the GIL, so it runs in the default executor, once per render, however many scrapers asked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .http_stats import HttpStats

_LOGGER = logging.getLogger(__name__)

Render = Callable[[], bytes | Iterable[bytes]]

SLICE_SECONDS = 0.005
WAKE_BATCH = 16  # scrapers woken per loop turn when their render is ready
# Exposition text compresses about 11x at level 1; higher levels save a few percent more
# for twice the CPU, which small hosts running this do not have to spare.
GZIP_LEVEL = 1
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip container, as Content-Encoding: gzip expects

_QVALUE = re.compile(r"\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*$", re.IGNORECASE)


class RenderFailed(Exception):
    """The render raised; it was logged once, however many scrapes waited for it."""


def gzip_bytes(body: bytes) -> bytes:
    return zlib.compress(body, GZIP_LEVEL, wbits=_GZIP_WBITS)


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


@dataclass(frozen=True, slots=True)
class Rendered:
    """One render's body, and its gzip form if any scraper of the burst asked for it."""

    body: bytes
    gzip: bytes | None


class SharedRender:
    """Runs ``render`` once for all the scrapes waiting at the same time."""

    def __init__(
        self, render: Render, stats: HttpStats, slice_seconds: float = SLICE_SECONDS
    ) -> None:
        self._render = render
        self._stats = stats
        self._slice = slice_seconds
        self._waiters: list[asyncio.Future[Rendered]] = []
        self._want_gzip = False
        self._running = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, gzip: bool) -> Rendered:
        """The current burst's render (``gzip`` set when asked); raises ``RenderFailed``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Rendered] = loop.create_future()
        self._waiters.append(waiter)
        self._want_gzip |= gzip
        if not self._running:
            self._running = True
            task = loop.create_task(self._run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiter

    def _take_waiters(self) -> tuple[list[asyncio.Future[Rendered]], bool]:
        """Close the burst: whoever comes next gets a fresh render."""
        waiters, want_gzip = self._waiters, self._want_gzip
        self._waiters, self._want_gzip, self._running = [], False, False
        return waiters, want_gzip

    async def _run(self) -> None:
        waiters: list[asyncio.Future[Rendered]] = []
        try:
            try:
                # Scrapes whose bytes came in the same I/O batch are parsed in the next loop
                # turn; one turn here lets them join this render instead of queueing for one.
                await asyncio.sleep(0)
                body = await self._timed_render()
            finally:
                waiters, want_gzip = self._take_waiters()
            rendered = Rendered(body, await self._compress(body) if want_gzip else None)
        except Exception:
            self._stats.render_errors += 1
            _LOGGER.exception("rendering /metrics failed")
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(RenderFailed())
            return
        except BaseException:
            for waiter in waiters:
                waiter.cancel()
            raise
        # Each woken scraper writes its response in the same loop turn; waking them a
        # batch per turn lets /healthz and the sources in between.
        for count, waiter in enumerate(waiters, 1):
            if not waiter.done():
                waiter.set_result(rendered)
            if count % WAKE_BATCH == 0:
                await asyncio.sleep(0)

    async def _timed_render(self) -> bytes:
        start = time.perf_counter()
        try:
            return await self._body()
        finally:
            self._stats.renders += 1
            self._stats.render_seconds += time.perf_counter() - start

    async def _compress(self, body: bytes) -> bytes:
        start = time.perf_counter()
        self._stats.gzips += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(None, gzip_bytes, body)
        finally:
            self._stats.gzip_seconds += time.perf_counter() - start

    async def _body(self) -> bytes:
        result = self._render()
        if isinstance(result, bytes):
            return result
        pieces: list[bytes] = []
        clock = time.perf_counter
        deadline = clock() + self._slice
        for piece in result:
            pieces.append(piece)
            if clock() >= deadline:
                await asyncio.sleep(0)
                deadline = clock() + self._slice
        return b"".join(pieces)
