"""The agent WebSocket endpoint: one aiohttp handler for the runner and Home Assistant.

``handle_agent(request, hub)`` serves ``/api/agent`` on the runner's app and, wrapped in a
``HomeAssistantView``, ``/api/fleet_metrics/agent`` in Home Assistant. Before the upgrade:
a ``token=`` in the query is refused (400, counted: a token in a URL ends up in logs), and
so is a request without ``Authorization: Bearer`` (401). After it: a client address with too
many failed attempts is closed with 4008; the first message must be a hello within
``HELLO_TIMEOUT``; the token must be the named host's (else 4001, the same for every kind of
miss). Then batches are applied and acked until either side closes. Every protocol fault
closes the connection with its code (``protocol.CLOSE_*``) and is counted in
``hub.rejects``. aiohttp answers the WebSocket pings and sends its own every ``HEARTBEAT``
seconds, closing a peer that stops answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from typing import Final

from aiohttp import WSCloseCode, WSMessage, WSMsgType, hdrs, web

from ...agent.protocol import (
    CLOSE_MALFORMED,
    CLOSE_RATE_LIMITED,
    CLOSE_TOO_LARGE,
    MAX_DECLARED_BYTES,
    MAX_MESSAGE_BYTES,
    Ack,
    Batch,
    Declare,
    Hello,
    ProtocolError,
    SeriesTable,
    decode,
    encode,
)
from .hub import Hub, Refused
from .tokens import bearer_token, hash_token

_LOGGER = logging.getLogger(__name__)

HELLO_TIMEOUT: Final = 10.0
HEARTBEAT: Final = 30.0
# aiohttp refuses a frame over its own cap before reading it (close code 1009); between
# MAX_MESSAGE_BYTES and this the frame is read and answered with 4003 and a count.
_READ_CAP: Final = 2 * MAX_MESSAGE_BYTES
_DEAD_LETTER_BYTES: Final = 4096


class _AckSender:
    """Every deferred ack of one event loop, sent by one task.

    A checkpoint acks every host at once (a thousand a second in the bench); a task per
    connection per checkpoint was a measurable share of the server's CPU. Acks are
    cumulative, so a connection waiting here keeps only its newest. A connection whose peer
    does not read (its transport holds more than ``_STALLED_BYTES``) is passed over, so that
    it cannot hold up the others' acks; it gets its ack with a later checkpoint, or aiohttp's
    heartbeat ends it.
    """

    __slots__ = ("_pending", "_task")

    def __init__(self) -> None:
        self._pending: dict[_WsConnection, Ack] = {}
        self._task: asyncio.Task[None] | None = None

    def add(self, connection: _WsConnection, ack: Ack) -> None:
        self._pending[connection] = ack
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        try:
            while self._pending:
                pending, self._pending = self._pending, {}
                for connection, ack in pending.items():
                    await connection.send_now(ack)
        finally:
            self._task = None


_STALLED_BYTES: Final = 16_384
_senders: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _AckSender] = (
    weakref.WeakKeyDictionary()
)


class _WsConnection:
    """A hub ``Connection``: closing and deferred acks are scheduled, since the hub never
    waits; acks go through the loop's one ``_AckSender``."""

    __slots__ = ("__weakref__", "_closing", "_sender", "transport", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport | None) -> None:
        self.ws = ws
        self.transport = transport
        self._closing: asyncio.Task[bool] | None = None
        loop = asyncio.get_running_loop()
        sender = _senders.get(loop)
        if sender is None:
            sender = _senders[loop] = _AckSender()
        self._sender = sender

    def send_ack(self, ack: Ack) -> None:
        if self._closing is None and not self.ws.closed:
            self._sender.add(self, ack)

    async def send_now(self, ack: Ack) -> None:
        if self._closing is not None or self.ws.closed:
            return
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() > _STALLED_BYTES:
            return  # the peer does not read: the others' acks must not wait for it
        # A connection going away: its agent gets the ack after it reconnects.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(encode(ack).decode())

    def close(self, code: int, reason: str) -> None:
        if self._closing is None and not self.ws.closed:
            self._closing = asyncio.get_running_loop().create_task(
                self.ws.close(code=code, message=reason.encode())
            )


async def handle_agent(request: web.Request, hub: Hub) -> web.StreamResponse:
    if "token" in request.query:
        hub.stats.token_in_url += 1
        hub.rejects.reject("token_in_url", "token in the URL; send it as Authorization: Bearer")
        raise web.HTTPBadRequest(text="send the token in the Authorization header, not the URL\n")
    token = bearer_token(request.headers.get(hdrs.AUTHORIZATION, ""))
    address = request.remote or ""
    if token is None:
        hub.stats.missing_token += 1
        hub.limiter.failure(address)
        raise web.HTTPUnauthorized(text="Authorization: Bearer <token> required\n")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=_READ_CAP)
    await ws.prepare(request)
    if hub.limiter.blocked(address):
        hub.stats.rate_limited += 1
        await ws.close(code=CLOSE_RATE_LIMITED, message=b"too many failed attempts")
        return ws
    try:
        hello = await asyncio.wait_for(_first_message(ws, hub), HELLO_TIMEOUT)
    except TimeoutError:
        hub.stats.closed_with(CLOSE_MALFORMED)
        hub.rejects.reject("timeout", "no hello in time", topic=f"agent:{address}")
        await ws.close(code=CLOSE_MALFORMED, message=b"no hello in time")
        return ws
    if hello is None:
        return ws
    try:
        state = hub.authenticate(hello, hash_token(token))
    except Refused as refused:
        hub.limiter.failure(address)
        _LOGGER.debug("agent from %s refused: %s", address, refused.reason)
        await ws.close(code=refused.code, message=b"not authorised")
        return ws
    hub.limiter.success(address)
    connection = _WsConnection(ws, request.transport)
    try:
        welcome = hub.connect(state, connection, hello)
        await ws.send_str(encode(welcome).decode())
        series = SeriesTable()  # what this connection's rows stand for
        declared_bytes = 0  # bounds the table in bytes as MAX_SERIES does in entries
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                _note_error(ws, hub, hello.host, message)
                break
            try:
                batch = decode(message.data, series)
                if isinstance(batch, Declare):
                    declared_bytes += len(message.data)
                    if declared_bytes > MAX_DECLARED_BYTES:
                        raise ProtocolError(CLOSE_TOO_LARGE, "too many series declared")
                    series.declare(batch)
                    continue
                if not isinstance(batch, Batch):
                    raise ProtocolError(CLOSE_MALFORMED, f"expected a batch, got {batch!r:.80}")
            except ProtocolError as err:
                await _refuse(ws, hub, err, hello.host, message.data)
                break
            # Neither the frame nor, after it is applied, the decoded batch may outlive this
            # turn: a thousand idle connections holding their last ones were 50 MB.
            del message
            if hub.throttled:  # the outputs are behind: stop reading until they catch up
                await hub.room()
            ack = hub.apply(state, connection, batch)
            del batch
            if ack is not None:
                await ws.send_str(encode(ack).decode())
            elif not hub.is_current(state, connection):
                break
    finally:
        hub.disconnect(state, connection)
    return ws


async def _first_message(ws: web.WebSocketResponse, hub: Hub) -> Hello | None:
    message = await ws.receive()
    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        _note_error(ws, hub, "", message)
        return None
    try:
        hello = decode(message.data)
        if not isinstance(hello, Hello):
            raise ProtocolError(CLOSE_MALFORMED, "the first message must be a hello")
    except ProtocolError as err:
        await _refuse(ws, hub, err, "", message.data)
        return None
    return hello


async def _refuse(
    ws: web.WebSocketResponse, hub: Hub, err: ProtocolError, host: str, data: str | bytes
) -> None:
    kind = "too_large" if err.code == CLOSE_TOO_LARGE else "malformed"
    hub.stats.closed_with(err.code)
    payload = data.encode("utf-8", "replace") if isinstance(data, str) else data
    hub.rejects.reject(
        kind, err.reason[:300], topic=f"agent:{host}", payload=payload[:_DEAD_LETTER_BYTES]
    )
    reason = err.reason.encode("utf-8", "replace")[:120].decode("utf-8", "ignore")
    await ws.close(code=err.code, message=reason.encode())  # a close reason fits 123 bytes


def _note_error(ws: web.WebSocketResponse, hub: Hub, host: str, message: WSMessage) -> None:
    """aiohttp ended the stream itself: a frame over its cap is counted as too large, any
    other protocol fault as malformed."""
    error = message.data if isinstance(message.data, BaseException) else ws.exception()
    if message.type != WSMsgType.ERROR or error is None:
        return
    too_big = getattr(error, "code", None) == WSCloseCode.MESSAGE_TOO_BIG
    code = WSCloseCode.MESSAGE_TOO_BIG if too_big else WSCloseCode.PROTOCOL_ERROR
    hub.stats.closed_with(int(code))
    hub.rejects.reject("too_large" if too_big else "malformed", str(error)[:300], f"agent:{host}")
