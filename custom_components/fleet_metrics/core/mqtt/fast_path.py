"""The fast MQTT client, and the check that the library internals it leans on are there.

``FastClient`` subclasses aiomqtt 2's client and replaces some of its private callbacks, and
it takes over paho-mqtt 2's private ``_sock_recv``: that is what makes a session route tens
of thousands of messages a second (``make bench``). Private members change without notice
when Home Assistant moves aiomqtt or paho on, so ``usable()`` checks them once per process;
when one is missing the session uses aiomqtt's public ``client.messages`` instead, slower
but correct, and one WARNING names what is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiomqtt

from .packet_reader import PacketReader
from .reasons import ConnectionLost, describe
from .topic_router import Handler

_LOGGER = logging.getLogger(__name__)

# False forces aiomqtt's public path everywhere (the tests run both ways).
ENABLED = True

# Major versions whose internals were read and tested; anything else takes the public path.
_MAJORS = {"aiomqtt": "2", "paho-mqtt": "2"}
# Methods FastClient overrides or calls, with their positional parameters after ``self``.
_CLIENT_METHODS = {
    "_on_message": 3,
    "_on_disconnect": 5,
    "_on_socket_open": 3,
    "_on_socket_register_write": 3,
    "_misc_loop": 0,
}
_CLIENT_ATTRIBUTES = ("_client", "_connected", "_disconnected", "_loop", "_misc_task")
_PAHO_METHODS = {"_sock_recv": 1, "loop_read": 0, "loop_write": 0}


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


# Read at import: importlib.metadata walks sys.path on disk, which must not happen in the
# event loop where ``usable()`` runs (Home Assistant imports integrations in an executor).
INSTALLED: dict[str, str] = {package: _installed(package) for package in _MAJORS}

_verdict: bool | None = None

_READ_SIZE = 65536


def usable() -> bool:
    """Whether sessions may use ``FastClient``; checked once, warned about once.

    Must run inside the event loop (aiomqtt's client needs one to be built).
    """
    global _verdict
    if not ENABLED:
        return False
    if _verdict is None:
        try:
            gaps = missing(aiomqtt.Client("localhost"))
        except Exception as err:  # a future aiomqtt that takes other arguments
            gaps = [f"aiomqtt.Client('localhost') failed: {err!r}"]
        _verdict = not gaps
        if gaps:
            _LOGGER.warning(
                "MQTT fast path off, using aiomqtt's public message iterator (slower): "
                "the installed libraries lack %s",
                "; ".join(gaps),
            )
    return _verdict


def missing(client: aiomqtt.Client) -> list[str]:
    """What the fast path needs that the installed aiomqtt and paho, or ``client``, lack."""
    gaps = []
    for package, major in _MAJORS.items():
        found = INSTALLED[package]
        if found.split(".")[0] != major:
            gaps.append(f"{package} {major}.x (found {found})")
    for name, arity in _CLIENT_METHODS.items():
        gaps += _method(type(client), "aiomqtt.Client", name, arity)
    if not inspect.iscoroutinefunction(getattr(type(client), "_misc_loop", None)):
        gaps.append("aiomqtt.Client._misc_loop as a coroutine")
    gaps += [f"aiomqtt.Client.{a}" for a in _CLIENT_ATTRIBUTES if not hasattr(client, a)]
    paho = getattr(client, "_client", None)
    for name, arity in _PAHO_METHODS.items():
        gaps += _method(type(paho), "paho.mqtt.client.Client", name, arity)
    return gaps


def _method(owner: type, label: str, name: str, arity: int) -> list[str]:
    """[] when ``owner.name`` is a method taking ``arity`` positional arguments."""
    method = getattr(owner, name, None)
    if not callable(method):
        return [f"{label}.{name}"]
    try:
        parameters = list(inspect.signature(method).parameters.values())[1:]
    except (TypeError, ValueError):
        return [f"{label}.{name} (signature unreadable)"]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if not len(required) <= arity <= len(positional):
        return [f"{label}.{name} taking {arity} arguments"]
    return []


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


class FastClient(aiomqtt.Client):
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
        self._ended: ConnectionLost | None = None  # how the socket ended, when it did

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        # QoS 1 and 2 (and MQTT 5 topic aliases) still arrive through paho.
        self._deliver(message.topic, message.payload)

    async def wait_disconnected(self) -> None:
        """Return when the connection ends; raises MqttError carrying the cause."""
        await asyncio.wait([self._disconnected])
        cause = None if self._disconnected.cancelled() else self._disconnected.exception()
        raise aiomqtt.MqttError(str(cause) if cause else "connection closed") from (
            self._ended or cause
        )

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
            return bool(client.loop_read() == 0)  # MQTT_ERR_SUCCESS

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
                        self._ended = ConnectionLost(
                            describe(error, self.timeout) if error else "closed by the broker"
                        )
                        if not self._connected.done():  # say why now, not at the timeout
                            self._connected.set_exception(self._ended)
                        feed.end(None)  # the reason is kept above; paho would log it at ERROR
                        client.loop_read()  # paho disconnects
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
