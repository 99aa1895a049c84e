"""``/metrics`` and ``/healthz`` on one aiohttp application, served within limits.

``create_app`` builds the routes; ``start_server`` serves any application (the agent
endpoint will share it) with the connection cap, head timeout and quiet 400s of
``http_limits``, and returns a handle with the port, the counters and ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiohttp import hdrs, web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .http_limits import ConnectionLimits, ServerLog, track_requests
from .http_render import Render, RenderFailed, Scrape, SharedRender, accepts_gzip
from .http_stats import HttpStats

_LOGGER = logging.getLogger(__name__)

RENDER_KEY = web.AppKey("render", SharedRender)
STATS_KEY = web.AppKey("http_stats", HttpStats)

MAX_CONNECTIONS = 500
HEADER_TIMEOUT = 10.0
WRITE_TIMEOUT = 30.0  # a peer that leaves the send buffer full this long is dropped
KEEPALIVE_TIMEOUT = 75.0  # idle keep-alive connections; aiohttp's own default is an hour
SHUTDOWN_TIMEOUT = 3.0  # for handlers still running at close
BACKLOG = 128


async def _metrics(request: web.Request) -> web.StreamResponse:
    stats = request.app[STATS_KEY]
    gzip = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
    headers = {hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST, hdrs.VARY: hdrs.ACCEPT_ENCODING}
    if gzip:  # the shared render writes gzip bytes itself: one stream for all such scrapers
        headers[hdrs.CONTENT_ENCODING] = "gzip"
    if request.method == hdrs.METH_HEAD:  # the headers alone: a stream would write a body
        return web.Response(headers=headers)
    scrape = Scrape(request, web.StreamResponse(headers=headers), gzip, _future())
    try:
        await request.app[RENDER_KEY].serve(scrape)
    except RenderFailed:
        raise web.HTTPInternalServerError(text="rendering the metrics failed\n") from None
    if not scrape.gone:
        stats.scrapes += 1
        stats.scrapes_gzip += gzip
    return scrape.response


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app(render: Render) -> web.Application:
    """``render`` returns the whole text exposition, as bytes or as pieces of bytes.

    ``/metrics`` streams it (``http_render``): chunked, unless it fits in one batch.
    """
    app = web.Application()
    stats = app[STATS_KEY] = HttpStats()
    app[RENDER_KEY] = SharedRender(render, stats)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    return app


@dataclass(slots=True)
class ServerHandle:
    """A running server: where it listens, what it counted, and how to stop it."""

    port: int
    stats: HttpStats
    _runner: web.AppRunner
    _listener: asyncio.Server

    async def close(self) -> None:
        """Stop listening, let running handlers finish (bounded), close every connection."""
        self._listener.close()
        await self._runner.cleanup()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener.wait_closed(), SHUTDOWN_TIMEOUT)


async def start_server(
    app: web.Application,
    host: str,
    port: int,
    *,
    max_connections: int = MAX_CONNECTIONS,
    header_timeout: float = HEADER_TIMEOUT,
    write_timeout: float = WRITE_TIMEOUT,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
) -> ServerHandle:
    """Serve ``app`` on ``host:port`` (0 picks a free port); raises ``OSError`` if it cannot.

    Beyond ``max_connections`` open connections a new one is answered 503 and closed; a
    connection that has not sent a complete request head ``header_timeout`` seconds after
    opening (or after its first byte following an idle keep-alive pause) is closed, and so is
    one whose peer leaves the send buffer full for ``write_timeout`` seconds.
    """
    stats = app.get(STATS_KEY)
    if stats is None:
        stats = app[STATS_KEY] = HttpStats()
    app.middlewares.insert(0, track_requests)
    runner = web.AppRunner(
        app,
        access_log=None,
        logger=ServerLog(logging.getLogger(f"{__name__}.aiohttp"), stats),
        keepalive_timeout=keepalive_timeout,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    server = runner.server
    assert server is not None  # setup() made it
    limits = ConnectionLimits(
        server,
        stats,
        max_connections=max_connections,
        header_timeout=header_timeout,
        write_timeout=write_timeout,
    )
    try:
        listener = await asyncio.get_running_loop().create_server(
            limits, host, port, backlog=BACKLOG
        )
    except BaseException:
        await runner.cleanup()
        raise
    bound_port: int = listener.sockets[0].getsockname()[1]
    return ServerHandle(bound_port, stats, runner, listener)
