"""One WebSocket to one server: hello, welcome, batches out, acks in, reconnect.

Built on the ``websockets`` asyncio client rather than aiohttp: the agent process needs only
a WebSocket client, and aiohttp's client stack (connector, resolver, cookies, multidict, yarl)
costs the agent ~9 MB of its 40 MB RSS budget where ``websockets`` costs ~3 MB.

The token goes in the ``Authorization: Bearer`` header of the upgrade request, never in the
URL or a message, and a redirect is never followed (it would carry the header to another
URL). After ``welcome {resume_from}`` the outbox drops what the server already has and the rest
is sent in seq order; batches added while connected follow at once. A lost connection is
retried with exponential backoff and jitter (``core.backoff``); a refused token is logged once
and retried slowly, a server that speaks another protocol version stops this client for good.
Each server has its own client and outbox, so one slow or refusing server never holds back
another.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ..backoff import Backoff
from ..errors import describe_error
from .config import ServerConfig
from .outbox import Outbox
from .protocol import (
    CLOSE_NOT_AUTHORISED,
    CLOSE_RATE_LIMITED,
    CLOSE_REASONS,
    CLOSE_REPLACED,
    CLOSE_VERSION,
    MAX_MESSAGE_BYTES,
    SERIES,
    Ack,
    Hello,
    Message,
    ProtocolError,
    Welcome,
    decode,
    encode,
)

_LOGGER = logging.getLogger(__name__)
# The library's own log: capped at INFO, because at DEBUG it writes every request header of
# the upgrade, the bearer token included (and every frame).
_WEBSOCKETS_LOGGER = logging.getLogger(f"{__name__}.websockets")
_WEBSOCKETS_LOGGER.setLevel(logging.INFO)

HEARTBEAT: Final = 30.0  # WebSocket ping interval; a pong missing this long closes the connection
CLOSE_TIMEOUT: Final = 5.0  # for the server's answer to our close frame
WINDOW: Final = 1000  # batches in flight before the sender waits for an ack
_AUTH_CODES: Final = (CLOSE_NOT_AUTHORISED, CLOSE_RATE_LIMITED)
_AUTH_STATUSES: Final = (401, 403)


class FatalClose(Exception):
    """The server will never accept this agent (another protocol version)."""


class _Closed(Exception):
    """The connection ended; ``code`` is the WebSocket close code (None: no close frame)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _ConfiguredUrlOnly(connect):
    """``connect`` that reports a redirect as the refusal it is instead of following it: the
    bearer token must reach only the URL the agent was configured with."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


@dataclass(slots=True)
class ClientStats:
    connects: int = 0
    disconnects: int = 0
    refused: int = 0  # auth and rate-limit refusals
    sent: int = 0  # batch frames written, replays included
    acks: int = 0


@dataclass(slots=True)
class ClientTiming:
    heartbeat: float = HEARTBEAT
    connect_timeout: float = 10.0  # connect + upgrade, then hello/welcome
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=60.0))
    # After a refused token: slowly, so a fleet with a revoked token does not hammer the server.
    auth_backoff: Backoff = field(default_factory=lambda: Backoff(initial=60.0, maximum=900.0))
    window: int = WINDOW


class AgentClient:
    """Keeps one server up to date from ``outbox`` until cancelled or refused for good."""

    def __init__(
        self,
        server: ServerConfig,
        outbox: Outbox,
        hello: Hello,
        timing: ClientTiming | None = None,
    ) -> None:
        self.server = server
        self.outbox = outbox
        self.hello = hello
        self.timing = timing or ClientTiming()
        self.stats = ClientStats()
        self.connected = False
        self.fatal: str | None = None
        self._wakeup = asyncio.Event()
        self._tls: dict[str, Any] = {}  # ``ssl=`` for wss:// (a ws:// URL must not have one)
        self._outage_logged = False

    def wake(self) -> None:
        """New batches are in the outbox (or acks made room in the window)."""
        self._wakeup.set()

    async def run(self) -> None:
        """Connect, exchange, reconnect; returns only when the server refuses for good."""
        if self.server.url.lower().startswith("wss:"):  # once, in a thread: it reads the CA files
            context = await asyncio.to_thread(
                ssl.create_default_context, cafile=self.server.ca_file or None
            )
            self._tls = {"ssl": context}
        while True:
            try:
                delay = await self._attempt()
            except FatalClose as err:
                self.fatal = str(err)
                _LOGGER.error("%s: %s; this server gets no more data", self.server.name, err)
                return
            await asyncio.sleep(delay)

    async def _attempt(self) -> float:
        """One connection from connect to loss; the delay before the next one."""
        try:
            await self._connection()
        except _Closed as closed:
            return self._after_close(closed)
        except InvalidStatus as err:
            status = err.response.status_code
            if status in _AUTH_STATUSES:
                return self._after_close(_Closed(CLOSE_NOT_AUTHORISED, f"HTTP {status}"))
            self._lost(None, f"upgrade refused: HTTP {status} {err.response.reason_phrase}")
        except (WebSocketException, OSError, TimeoutError, ProtocolError) as err:
            self._lost(None, describe_error(err, self.timing.connect_timeout))
        finally:
            self.connected = False
        return self.timing.backoff.next_delay()

    def _after_close(self, closed: _Closed) -> float:
        """Log what the close code means; the delay before the next attempt."""
        code = closed.code
        if code == CLOSE_VERSION:
            raise FatalClose(
                f"the server does not speak this agent's protocol version "
                f"({closed.reason}); upgrade the agent or the server"
            )
        if code in _AUTH_CODES:
            self.stats.refused += 1
            delay = self.timing.auth_backoff.next_delay()
            if not self._outage_logged:
                self._outage_logged = True
                hint = (
                    "check the token for this host (it may have been rotated or revoked)"
                    if code == CLOSE_NOT_AUTHORISED
                    else "too many failed attempts from this address"
                )
                _LOGGER.error(
                    "%s refused host %s: %s; %s. Retrying every few minutes",
                    self.server.name,
                    self.hello.host,
                    CLOSE_REASONS.get(code, closed.reason),
                    hint,
                )
            return delay
        if code == CLOSE_REPLACED:
            _LOGGER.warning(
                "%s: another connection for host %s took over (is a second agent running with "
                "the same host name and token?)",
                self.server.name,
                self.hello.host,
            )
            self._outage_logged = True
            return self.timing.backoff.next_delay()
        reason = CLOSE_REASONS.get(code, closed.reason) if code is not None else closed.reason
        self._lost(code, reason)
        return self.timing.backoff.next_delay()

    def _lost(self, code: int | None, reason: str) -> None:
        """One WARNING per outage; the attempts after it at DEBUG."""
        where = f" (close code {code})" if code is not None else ""
        if self._outage_logged:
            _LOGGER.debug("%s: still unreachable: %s%s", self.server.name, reason, where)
            return
        self._outage_logged = True
        _LOGGER.warning(
            "%s: connection lost: %s%s; retrying with backoff, %d batches kept",
            self.server.name,
            reason,
            where,
            len(self.outbox),
        )

    async def _connection(self) -> NoReturn:
        timing = self.timing
        try:
            async with _ConfiguredUrlOnly(
                self.server.url,
                additional_headers={"Authorization": f"Bearer {self.server.token}"},
                compression=None,  # small JSON frames; deflate would cost CPU and memory
                proxy=None,  # straight to the configured server, whatever the environment says
                open_timeout=timing.connect_timeout,
                ping_interval=timing.heartbeat,
                ping_timeout=timing.heartbeat,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE_BYTES,
                logger=_WEBSOCKETS_LOGGER,
                **self._tls,
            ) as ws:
                await self._exchange(ws)
        except ConnectionClosed as err:
            raise self._closed(err) from None

    async def _exchange(self, ws: ClientConnection) -> NoReturn:
        timing = self.timing
        await ws.send(encode(self.hello).decode())
        async with asyncio.timeout(timing.connect_timeout):
            welcome = self._message(await ws.recv())
        if not isinstance(welcome, Welcome):
            raise ProtocolError(0, f"expected a welcome, got {type(welcome).__name__}")
        self.outbox.ack(welcome.resume_from)
        self.outbox.use_series(SERIES in welcome.capabilities)
        self.connected = True
        self.stats.connects += 1
        timing.auth_backoff.reset()
        if self._outage_logged or self.stats.connects == 1:
            _LOGGER.info("%s: connected as host %s", self.server.name, self.hello.host)
            self._outage_logged = False
        _LOGGER.debug(
            "%s: welcome, resume_from=%d, %d batches to send",
            self.server.name,
            welcome.resume_from,
            len(self.outbox),
        )
        sender = asyncio.create_task(self._send(ws, welcome.resume_from))
        try:
            while True:
                message = self._message(await ws.recv())
                if isinstance(message, Ack):
                    self.stats.acks += 1
                    if self.outbox.ack(message.seq):
                        timing.backoff.reset()  # the server applies what we send
                    self.wake()
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self.stats.disconnects += 1

    @staticmethod
    def _closed(err: ConnectionClosed) -> _Closed:
        """The server's close code and reason; without its close frame, what happened."""
        if err.rcvd is not None:
            return _Closed(err.rcvd.code, err.rcvd.reason or "closed")
        return _Closed(None, describe_error(err))

    @staticmethod
    def _message(data: str | bytes) -> Message:
        if isinstance(data, bytes):
            raise ProtocolError(0, "unexpected binary frame")
        return decode(data)

    async def _send(self, ws: ClientConnection, sent: int) -> None:
        """Everything after ``sent`` in order, then each new batch as it comes, keeping at
        most ``window`` unacknowledged batches in flight. The series a frame's rows use are
        declared first, once per connection."""
        declared = 0  # ids below this are declared on this connection
        while True:
            self._wakeup.clear()
            room = self.outbox.acked + self.timing.window - sent
            for frame in list(itertools.islice(self.outbox.after(sent), max(0, room))):
                series = self.outbox.series
                if frame.last_series >= declared and series is not None:
                    for declaration in series.declarations(declared, frame.last_series):
                        await ws.send(encode(declaration).decode())
                    declared = frame.last_series + 1
                await ws.send(frame.text)
                self.stats.sent += 1
                sent = frame.seq
            await self._wakeup.wait()
