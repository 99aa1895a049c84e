"""A broker connection that stays up: reconnects with backoff, resubscribes, routes."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ..backoff import Backoff
from .packet_reader import PacketReader
from .settings import tls_context
from .topic_router import Handler, TopicRouter

_LOGGER = logging.getLogger(__name__)

# CONNACK codes that mean the credentials were refused (MQTT 3.1.1 and 5).
_AUTH_CODES_V3 = {4, 5}
_AUTH_CODES_V5 = {134, 135}


class ConnectionState(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"


class BrokerUnavailable(Exception):
    """The broker could not be reached."""


class BrokerAuthFailed(Exception):
    """The broker refused the credentials."""


def _is_auth_error(err: aiomqtt.MqttError) -> bool:
    rc = getattr(err, "rc", None)
    if isinstance(rc, ReasonCode):
        return rc.value in _AUTH_CODES_V5
    return isinstance(rc, int) and rc in _AUTH_CODES_V3


_READ_SIZE = 65536


class _PahoFeed:
    """Stands in for paho's ``_sock_recv``: paho reads only the packets it is handed."""

    __slots__ = ("_data", "_end")

    def __init__(self) -> None:
        self._data = b""
        self._end: OSError | bool = False

    def load(self, packet: bytes) -> None:
        self._data = packet

    def end(self, error: OSError | None) -> None:
        """The next read reports the socket's error, or end of stream, so paho disconnects."""
        self._end = error or True

    def __call__(self, size: int) -> bytes:
        if self._end:
            if isinstance(self._end, OSError):
                raise self._end
            return b""
        if not self._data:
            raise BlockingIOError
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


class _Client(aiomqtt.Client):
    """aiomqtt's client (2.5), made fast for routing thousands of messages a second.

    - Each message goes straight from paho's read callback (already on the event loop) to
      ``deliver``. aiomqtt's ``async for client.messages`` puts every message through a queue,
      a task and a wait; a session that only routes needs none of that.
    - The socket is read here, 64 KiB at a time, and QoS 0 PUBLISH packets are decoded by
      ``PacketReader``; paho gets every other packet whole. paho alone would read each packet
      with three system calls and one event-loop wake-up. Measured in ``make bench``.

    And two races seen when a session stops or the broker goes are guarded:
    - After every send aiomqtt schedules the socket's write watcher with
      ``call_soon_threadsafe``. When the socket closes before that callback runs, the loop is
      asked to watch a dead file descriptor and logs an OSError. Here the watcher is only
      added to an open socket.
    - When the task is cancelled while waiting for CONNACK, aiomqtt's connect future is
      cancelled, and paho's later disconnect callback asks it for its exception, which
      raises CancelledError inside the loop. Here that callback stops early; and a disconnect
      error that arrives while the session is already leaving is marked as seen (an awaiter
      still gets it) instead of being logged as never retrieved.
    """

    def __init__(self, *args: Any, deliver: Handler, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deliver = deliver
        self._socket_recv = self._client._sock_recv
        self._feed = _PahoFeed()
        self._client._sock_recv = self._feed  # type: ignore[method-assign, assignment]
        v5 = kwargs.get("protocol") == aiomqtt.ProtocolVersion.V5
        self._reader = PacketReader(deliver, properties=v5)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # QoS 1 and 2 (and MQTT 5 topic aliases) still arrive through paho.
        self._deliver(message.topic, message.payload)

    async def wait_disconnected(self) -> None:
        """Return when the connection ends; raises MqttError carrying the cause."""
        await asyncio.wait([self._disconnected])
        cause = None if self._disconnected.cancelled() else self._disconnected.exception()
        raise aiomqtt.MqttError(str(cause) if cause else "connection closed") from cause

    def _on_disconnect(self, *args: Any, **kwargs: Any) -> None:
        if self._connected.cancelled():
            return
        super()._on_disconnect(*args, **kwargs)
        if self._disconnected.done() and not self._disconnected.cancelled():
            self._disconnected.exception()

    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        feed, reader = self._feed, self._reader

        def to_paho(packet: bytes) -> bool:
            feed.load(packet)
            return bool(client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS)

        def read() -> None:
            try:
                while True:
                    error: OSError | None = None
                    try:
                        data = self._socket_recv(_READ_SIZE)
                    except BlockingIOError:
                        return
                    except OSError as err:
                        data, error = b"", err
                    if not data:
                        feed.end(error)
                        client.loop_read()  # paho logs it and disconnects
                        return
                    # TLS may hold decrypted bytes the event loop cannot see: read them too.
                    if not reader.feed(data, to_paho) or not (
                        hasattr(sock, "pending") and sock.pending()
                    ):
                        return
            except Exception as err:
                if not self._disconnected.done():
                    self._disconnected.set_exception(err)

        def misc() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        # paho calls this from the executor thread that connects.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read)
        self._loop.call_soon_threadsafe(misc)

    def _on_socket_register_write(self, client: Any, userdata: Any, sock: Any) -> None:
        def write() -> None:
            try:
                client.loop_write()
            except Exception as err:
                if not self._disconnected.done():
                    self._disconnected.set_exception(err)

        def watch() -> None:
            if sock.fileno() != -1:
                self._loop.add_writer(sock.fileno(), write)

        self._loop.call_soon_threadsafe(watch)


def _client(settings: Mapping[str, Any], identifier: str, deliver: Handler) -> _Client:
    protocol = (
        aiomqtt.ProtocolVersion.V5
        if settings.get("protocol") == "5"
        else aiomqtt.ProtocolVersion.V311
    )
    return _Client(
        hostname=settings["host"],
        port=settings.get("port", 1883),
        username=settings.get("username") or None,
        password=settings.get("password") or None,
        identifier=identifier,
        keepalive=settings.get("keepalive", 60),
        protocol=protocol,
        tls_context=tls_context(settings),
        tls_insecure=bool(settings.get("tls_insecure")) if settings.get("tls") else None,
        timeout=10,
        deliver=deliver,
    )


async def check_connection(settings: Mapping[str, Any]) -> None:
    """Connect once and disconnect; raises BrokerAuthFailed or BrokerUnavailable."""
    try:
        identifier = f"fleet-metrics-check-{uuid.uuid4().hex[:8]}"
        async with _client(settings, identifier, lambda topic, payload: None):
            return
    except aiomqtt.MqttError as err:
        if _is_auth_error(err):
            raise BrokerAuthFailed(str(err)) from err
        raise BrokerUnavailable(str(err)) from err
    except OSError as err:
        raise BrokerUnavailable(str(err)) from err


class BrokerSession:
    """Keeps one connection to a broker and hands each message to the matching handlers.

    Sources register topic filters with ``subscribe`` at any time; filters are sent to the
    broker once each, however many handlers share them, and again after every reconnect.
    """

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        backoff: Backoff | None = None,
        auth_backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.state = ConnectionState.DISCONNECTED
        self.connects = 0
        self.reconnects = 0
        self.messages = 0
        self.handler_errors = 0
        self.last_error: str | None = None
        self._router = TopicRouter()
        self._client: _Client | None = None
        self._backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self._auth_backoff = auth_backoff or Backoff(initial=60.0, maximum=600.0)
        self._identifier = settings.get("client_id") or f"fleet-metrics-{uuid.uuid4().hex[:12]}"
        self._pending: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self.on_state_change: Callable[[ConnectionState], None] | None = None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    def subscribe(self, topic_filter: str, handler: Handler) -> Callable[[], None]:
        """Route messages matching ``topic_filter`` to ``handler``; returns the undo."""
        new = topic_filter not in self._router.filters
        self._router.add(topic_filter, handler)
        if new and self._client is not None:
            self._in_background(self._client.subscribe(topic_filter))

        def unsubscribe() -> None:
            # Only the route goes: the broker-side filter lapses at the next reconnect, and
            # until then its messages find no handler. No round trip while shutting down.
            self._router.remove(topic_filter, handler)

        return unsubscribe

    def _in_background(self, coro: Any) -> None:
        async def guarded() -> None:
            with contextlib.suppress(aiomqtt.MqttError):
                await coro

        task = asyncio.create_task(guarded())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def _set_state(self, state: ConnectionState, error: str | None = None) -> None:
        """Record the state; log only transitions, so a long outage is one line."""
        previous = self.state
        self.state = state
        self.last_error = error
        if state is not previous and self.on_state_change is not None:
            self.on_state_change(state)
        if state is ConnectionState.CONNECTED:
            self._connected.set()
            _LOGGER.info("broker %s: connected to %s:%s", self.name, *self._address())
            return
        self._connected.clear()
        if state is previous:
            _LOGGER.debug("broker %s: still %s (%s)", self.name, state, error)
        elif state is ConnectionState.AUTH_FAILED:
            _LOGGER.error("broker %s: credentials refused (%s); retrying slowly", self.name, error)
        elif state is ConnectionState.DISCONNECTED:
            _LOGGER.warning("broker %s: unreachable (%s); reconnecting", self.name, error)

    def _address(self) -> tuple[str, int]:
        return self.settings["host"], self.settings.get("port", 1883)

    async def run(self) -> None:
        """Stay connected until cancelled. A broker that is down is retried, never fatal."""
        while True:
            backoff = self._backoff
            try:
                async with _client(self.settings, self._identifier, self._dispatch) as client:
                    await self._serve(client)
                error = "connection closed"
            except aiomqtt.MqttError as err:
                if _is_auth_error(err):
                    backoff = self._auth_backoff
                    self._client = None
                    self._set_state(ConnectionState.AUTH_FAILED, str(err))
                    await asyncio.sleep(backoff.next_delay())
                    continue
                error = str(err) or type(err).__name__
            except OSError as err:
                error = str(err)
            finally:
                self._client = None
                for task in self._pending:
                    task.cancel()
            self._set_state(ConnectionState.DISCONNECTED, error)
            await asyncio.sleep(backoff.next_delay())

    async def _serve(self, client: _Client) -> None:
        self._client = client
        for topic_filter in self._router.filters:
            await client.subscribe(topic_filter)
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
        self._backoff.reset()
        self._auth_backoff.reset()
        self._set_state(ConnectionState.CONNECTED)
        await client.wait_disconnected()

    def _dispatch(self, topic: str, payload: bytes) -> None:
        """Runs inside paho's read callback: handlers must not block, and never raise out."""
        self.messages += 1
        for handler in self._router.match(topic):
            try:
                handler(topic, payload)
            except Exception:
                self.handler_errors += 1
                _LOGGER.exception("broker %s: handler for %s failed", self.name, topic)
