"""A connection cap, head and write timeouts, and quiet 400s for the aiohttp server.

aiohttp has neither a cap on open connections nor a deadline for reading a request head: a
client that connects and then sends nothing, or a header byte every few seconds, holds a file
descriptor until it goes away (before its first request no keep-alive timer runs), and enough
of them exhaust the process's descriptors, which also stops MQTT from reconnecting. aiohttp
also logs every request its parser rejects as an ERROR with a traceback.

All of it is built from public API. ``ConnectionLimits`` is the protocol factory handed to
``loop.create_server``: past the cap it returns a protocol that answers 503 and closes at once;
otherwise it wraps aiohttp's own ``RequestHandler`` (from ``AppRunner.server``) in a
``GuardedConnection`` that forwards every protocol call and closes the connection when a
request head is not complete within ``header_timeout`` of the connection opening, or of the
first byte after an idle keep-alive pause (idle connections are aiohttp's ``keepalive_timeout``
business), or when the peer leaves the send buffer full (transport writing paused) for
``write_timeout``: a reader that stops reading pins a response's bytes. ``track_requests``, the
outermost middleware, marks a connection busy while a handler runs, so a slow handler or an
upgraded WebSocket is never cut by the head timeout. ``ServerLog`` is the ``logger``
aiohttp's request handler writes to.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Mapping

from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.typedefs import Handler

from .http_stats import HttpStats

_LOGGER = logging.getLogger(__name__)

REFUSED_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n"
    b"too many connections"
)
REFUSED_LOG_INTERVAL = 60.0


class ConnectionLimits:
    """Protocol factory: caps open connections and guards each with head and write timeouts."""

    def __init__(
        self,
        make_handler: Callable[[], asyncio.Protocol],
        stats: HttpStats,
        *,
        max_connections: int,
        header_timeout: float,
        write_timeout: float,
    ) -> None:
        self._make_handler = make_handler
        self.stats = stats
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.write_timeout = write_timeout
        # Weak: a protocol whose transport never came up is forgotten, not counted forever.
        self._open: weakref.WeakSet[GuardedConnection] = weakref.WeakSet()
        self._refused_logged_at: float | None = None

    def __call__(self) -> asyncio.Protocol:
        stats = self.stats
        if len(self._open) >= self.max_connections:
            stats.connections_refused += 1
            self._log_refused()
            return _Refused()
        guard = GuardedConnection(self._make_handler(), self)
        self._open.add(guard)
        stats.connections_accepted += 1
        stats.connections_open = len(self._open)
        return guard

    def closed(self, guard: GuardedConnection) -> None:
        self._open.discard(guard)
        self.stats.connections_open = len(self._open)

    def _log_refused(self) -> None:
        now = asyncio.get_running_loop().time()
        last = self._refused_logged_at
        if last is None or now - last >= REFUSED_LOG_INTERVAL:
            self._refused_logged_at = now
            _LOGGER.warning(
                "HTTP connection cap (%d) reached: refusing new connections (%d so far)",
                self.max_connections,
                self.stats.connections_refused,
            )


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed if a head is slow or reading stops."""

    __slots__ = ("__weakref__", "_busy", "_inner", "_limits", "_stall", "_timer", "_transport")

    def __init__(self, inner: asyncio.Protocol, limits: ConnectionLimits) -> None:
        self._inner = inner
        self._limits = limits
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stall: asyncio.TimerHandle | None = None
        self._busy = 0  # handlers running on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is None and not self._busy:
            self._arm()  # the first byte of a new request head after an idle pause
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._cancel_stall()
        loop = asyncio.get_running_loop()
        self._stall = loop.call_later(self._limits.write_timeout, self._stalled)
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._cancel_stall()
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._cancel_stall()
        self._transport = None
        self._limits.closed(self)
        self._inner.connection_lost(exc)

    def request_started(self) -> None:
        self._busy += 1
        self._disarm()

    def request_finished(self) -> None:
        self._busy -= 1

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._limits.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cancel_stall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _stalled(self) -> None:
        self._stall = None
        if self._transport is None:
            return
        self._limits.stats.write_timeouts += 1
        _LOGGER.debug(
            "closing %s: its send buffer stayed full for %s s",
            self._transport.get_extra_info("peername"),
            self._limits.write_timeout,
        )
        self._transport.abort()

    def _expired(self) -> None:
        self._timer = None
        if self._busy or self._transport is None:
            return
        self._limits.stats.header_timeouts += 1
        _LOGGER.debug(
            "closing %s: no complete request head within %s s",
            self._transport.get_extra_info("peername"),
            self._limits.header_timeout,
        )
        # abort, not close: close would wait to flush to a peer that may never read
        self._transport.abort()


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(REFUSED_RESPONSE)
        transport.close()


@web.middleware
async def track_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: a connection is exempt from the head timeout while serving."""
    transport = request.transport
    guard = transport.get_protocol() if transport is not None else None
    if not isinstance(guard, GuardedConnection):
        return await handler(request)
    guard.request_started()
    try:
        return await handler(request)
    finally:
        guard.request_finished()


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """The ``logger`` of aiohttp's request handler: parser rejections are counted, not errors.

    aiohttp answers 400 to a bad request line, oversized headers or bytes that are not HTTP,
    and logs each with ``logger.exception``: at a port anyone can reach, that is noise, not a
    fault of this program. Every log call arrives here (LoggerAdapter routes them all through
    ``log``); those carrying an ``HttpProcessingError`` become one DEBUG line, the rest pass on.
    """

    def __init__(self, logger: logging.Logger, stats: HttpStats) -> None:
        super().__init__(logger)
        self._stats = stats

    def log(  # type: ignore[override]  # typeshed spells the keywords out; these pass through
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: object = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self._stats.bad_requests += 1
            if self.logger.isEnabledFor(logging.DEBUG):
                detail = " ".join(str(exc_info).split())
                self.logger.debug("%s: %s", str(msg) % args if args else msg, detail)
            return
        self.logger.log(
            level,
            msg,
            *args,
            exc_info=exc_info,  # type: ignore[arg-type]
            stack_info=stack_info,
            stacklevel=stacklevel + 1,
            extra=extra,
        )
