"""A broker connection that stays up: reconnects with backoff, resubscribes, routes.

One session is shared by every source on a broker, so nothing one source asks for may end
it: a filter that is invalid fails that source's ``subscribe`` at once, and a filter the
broker refuses, or does not answer, is logged and counted while the others go on. An outage
is logged once, with a readable reason, and its end with its length.

The TLS context is built in a worker thread (building it reads the CA and certificate
files, which must not block the event loop). A file that does not load raises TlsFileError
out of ``run`` (or ``check_connection``) at the first connect. Each reconnect builds it again,
so a renewed client certificate is picked up without a restart; when the files cannot be read
then, the session keeps the context it has and says so once.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import aiomqtt

from ..backoff import Backoff
from . import fast_path
from .reasons import ConnectionLost, describe, duration, refusal, rejects_credentials
from .settings import TlsFileError, tls_context
from .topic_router import Handler, TopicRouter

_LOGGER = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for CONNACK, SUBACK and the TCP connect
_SUBSCRIBING_AT_ONCE = 8  # aiomqtt warns past 10 pending calls


class ConnectionState(enum.StrEnum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"


class BrokerUnavailable(Exception):
    """The broker could not be reached."""


class BrokerAuthFailed(Exception):
    """The broker refused the credentials."""


class _LibraryLog(logging.Logger):
    """Where aiomqtt and paho log: everything at DEBUG, under the session's logger.

    paho logs a lost connection or a failed TLS read at ERROR, once per attempt; the session
    reports an outage itself, once, with a readable reason.
    """

    def __init__(self) -> None:
        super().__init__(f"{__name__}.client")
        self.parent = _LOGGER
        self.addFilter(self._demote)

    def isEnabledFor(self, level: int) -> bool:
        return _LOGGER.isEnabledFor(logging.DEBUG)

    @staticmethod
    def _demote(record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_LIBRARY_LOG = _LibraryLog()


async def build_tls_context(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
    """``tls_context`` off the event loop (it reads files); None at once without TLS."""
    if not settings.get("tls"):
        return None
    return await asyncio.to_thread(tls_context, settings)


def _client(
    settings: Mapping[str, Any],
    identifier: str,
    deliver: Handler,
    timeout: float = TIMEOUT,
    context: ssl.SSLContext | None = None,
) -> aiomqtt.Client:
    """A FastClient when the check allows it, else aiomqtt's own (read with ``receive``).

    With TLS on, ``context`` is the one ``build_tls_context`` made: never built here.
    """
    if settings.get("tls") and context is None:
        raise ValueError("TLS is on but no TLS context was built")
    protocol = (
        aiomqtt.ProtocolVersion.V5
        if settings.get("protocol") == "5"
        else aiomqtt.ProtocolVersion.V311
    )
    options: dict[str, Any] = {
        "hostname": settings["host"],
        "port": settings.get("port", 1883),
        "username": settings.get("username") or None,
        "password": settings.get("password") or None,
        "identifier": identifier,
        "keepalive": settings.get("keepalive", 60),
        "protocol": protocol,
        "tls_context": context if settings.get("tls") else None,
        "tls_insecure": bool(settings.get("tls_insecure")) if settings.get("tls") else None,
        "timeout": timeout,
        "logger": _LIBRARY_LOG,
    }
    if fast_path.usable():
        client: aiomqtt.Client = fast_path.FastClient(**options, deliver=deliver)
    else:
        client = aiomqtt.Client(**options)
    # The TCP connect gets the same time as CONNACK, so "timed out after N s" is true.
    paho = getattr(client, "_client", None)
    if paho is not None and hasattr(paho, "connect_timeout"):
        paho.connect_timeout = timeout
    return client


async def receive(client: aiomqtt.Client, deliver: Handler) -> None:
    """Hand every message to ``deliver`` until the connection ends; raises MqttError."""
    if isinstance(client, fast_path.FastClient):
        await client.wait_disconnected()  # messages are delivered from the read callback
    async for message in client.messages:
        payload = message.payload
        deliver(message.topic.value, payload if isinstance(payload, bytes) else _bytes(payload))
    raise ConnectionLost("connection closed")


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()


async def check_connection(
    settings: Mapping[str, Any],
    timeout: float = TIMEOUT,  # noqa: ASYNC109 - per step, as the session's; the reason quotes it
) -> None:
    """Connect once and disconnect; raises BrokerAuthFailed or BrokerUnavailable (readable)."""
    try:
        context = await build_tls_context(settings)  # TlsFileError: not caught, as before
        identifier = f"fleet-metrics-check-{uuid.uuid4().hex[:8]}"
        async with _client(settings, identifier, lambda topic, payload: None, timeout, context):
            return
    except (aiomqtt.MqttError, OSError) as err:
        reason = describe(err, timeout)
        if rejects_credentials(err):
            raise BrokerAuthFailed(reason) from err
        raise BrokerUnavailable(reason) from err


class BrokerSession:
    """Keeps one connection to a broker and hands each message to the matching handlers.

    Sources register topic filters with ``subscribe`` at any time; filters are sent to the
    broker once each, however many handlers share them, and again after every reconnect.

    Self-metrics read ``connects``, ``reconnects``, ``messages``, ``handler_errors``,
    ``subscription_failures`` (refused or unanswered subscribes, each time) and
    ``outage_started`` (``time.monotonic()`` when the broker was last found unreachable,
    None while connected).
    """

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any],
        backoff: Backoff | None = None,
        auth_backoff: Backoff | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self.name = name
        self._extra = {"broker": name}  # for JSON logs, whichever task logs
        self.settings = settings
        self.timeout = timeout
        self.state = ConnectionState.DISCONNECTED
        self.connects = 0
        self.reconnects = 0
        self.messages = 0
        self.handler_errors = 0
        self.subscription_failures = 0
        self.failed_subscriptions: dict[str, str] = {}  # filter -> reason, until it succeeds
        self.outage_started: float | None = None
        self.last_error: str | None = None
        self._router = TopicRouter()
        self._client: aiomqtt.Client | None = None
        self._backoff = backoff or Backoff(initial=1.0, maximum=60.0)
        self._auth_backoff = auth_backoff or Backoff(initial=60.0, maximum=600.0)
        self._identifier = settings.get("client_id") or f"fleet-metrics-{uuid.uuid4().hex[:12]}"
        self._tls: ssl.SSLContext | None = None  # built at each connect (module doc)
        self._tls_warned = False
        self._pending: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._subscribing = asyncio.Semaphore(_SUBSCRIBING_AT_ONCE)
        self._warned: ConnectionState | None = None  # what this outage was logged as
        self._warned_filters: set[str] = set()
        self.on_state_change: Callable[[ConnectionState], None] | None = None

    @property
    def connected(self) -> bool:
        return self.state is ConnectionState.CONNECTED

    def subscribe(self, topic_filter: str, handler: Handler) -> Callable[[], None]:
        """Route messages matching ``topic_filter`` to ``handler``; returns the undo.

        Raises InvalidTopicFilter (a ValueError) for a filter no broker should be sent.
        """
        new = topic_filter not in self._router.filters
        self._router.add(topic_filter, handler)
        if new and self._client is not None:
            self._in_background(self._subscribe_one(self._client, topic_filter))

        def unsubscribe() -> None:
            # Only the route goes: the broker-side filter lapses at the next reconnect, and
            # until then its messages find no handler. No round trip while shutting down.
            self._router.remove(topic_filter, handler)
            if topic_filter not in self._router.filters:
                self.failed_subscriptions.pop(topic_filter, None)
                self._warned_filters.discard(topic_filter)

        return unsubscribe

    def _in_background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def _address(self) -> str:
        return f"{self.settings['host']}:{self.settings.get('port', 1883)}"

    async def run(self) -> None:
        """Stay connected until cancelled. A broker that is down is retried, never fatal."""
        while True:
            attempt, connects = time.monotonic(), self.connects
            try:
                await self._refresh_tls()
                async with _client(
                    self.settings, self._identifier, self._dispatch, self.timeout, self._tls
                ) as client:
                    await self._serve(client)
                error: BaseException = ConnectionLost("connection closed")
            except (aiomqtt.MqttError, OSError) as err:
                error = err
            finally:
                self._client = None
                for task in self._pending:
                    task.cancel()
            lost = self.connects > connects
            if self.outage_started is None:
                self.outage_started = time.monotonic() if lost else attempt
            auth = rejects_credentials(error)
            state = ConnectionState.AUTH_FAILED if auth else ConnectionState.DISCONNECTED
            self._set_state(state, describe(error, self.timeout), lost)
            await asyncio.sleep((self._auth_backoff if auth else self._backoff).next_delay())

    async def _refresh_tls(self) -> None:
        """Build the TLS context for this attempt (module doc); TlsFileError goes out of
        ``run`` only at the first connect."""
        if self._tls is None:
            self._tls = await build_tls_context(self.settings)
            return
        try:
            self._tls = await build_tls_context(self.settings)
        except TlsFileError as err:
            if not self._tls_warned:
                self._tls_warned = True
                _LOGGER.warning(
                    "broker %s: TLS files cannot be read again, using the ones loaded before: %s",
                    self.name,
                    err,
                    extra=self._extra,
                )
        else:
            self._tls_warned = False

    async def _serve(self, client: aiomqtt.Client) -> None:
        self._client = client
        receiving = asyncio.create_task(receive(client, self._dispatch))
        subscribing = asyncio.create_task(self._subscribe_all(client, self._router.filters))
        try:
            # Stop subscribing if the connection ends first: that is no filter's fault.
            await asyncio.wait({receiving, subscribing}, return_when=asyncio.FIRST_COMPLETED)
            if not receiving.done():
                self.connects += 1
                if self.connects > 1:
                    self.reconnects += 1
                self._backoff.reset()
                self._auth_backoff.reset()
                self._set_state(ConnectionState.CONNECTED)
            await receiving
        finally:
            for task in (subscribing, receiving):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await subscribing

    async def _subscribe_all(self, client: aiomqtt.Client, filters: list[str]) -> None:
        await asyncio.gather(*(self._subscribe_one(client, f) for f in filters))

    async def _subscribe_one(self, client: aiomqtt.Client, topic_filter: str) -> None:
        """Subscribe to one filter; whatever goes wrong stays with that filter.

        A refused or unanswered filter is tried again at the next reconnect.
        """
        async with self._subscribing:
            try:
                granted = await client.subscribe(topic_filter, timeout=self.timeout)
            except aiomqtt.MqttCodeError as err:  # not sent: the connection is going
                _LOGGER.debug(
                    "broker %s: subscribe %r not sent: %s",
                    self.name,
                    topic_filter,
                    err,
                    extra=self._extra,
                )
                return
            except Exception as err:
                self._subscription_failed(topic_filter, describe(err, self.timeout))
                return
        if refused := refusal(granted):
            self._subscription_failed(topic_filter, refused)
        else:
            self.failed_subscriptions.pop(topic_filter, None)

    def _subscription_failed(self, topic_filter: str, reason: str) -> None:
        self.subscription_failures += 1
        self.failed_subscriptions[topic_filter] = reason
        if topic_filter in self._warned_filters:
            _LOGGER.debug(
                "broker %s: subscription to %r %s",
                self.name,
                topic_filter,
                reason,
                extra=self._extra,
            )
            return
        self._warned_filters.add(topic_filter)
        _LOGGER.warning(
            "broker %s: subscription to %r failed (%s); its messages will not arrive, the "
            "other subscriptions go on",
            self.name,
            topic_filter,
            reason,
            extra=self._extra,
        )

    def _set_state(
        self, state: ConnectionState, error: str | None = None, lost: bool = False
    ) -> None:
        """Record the state; log an outage once as it starts and once as it ends."""
        previous = self.state
        self.state = state
        self.last_error = error
        if state is not previous and self.on_state_change is not None:
            self.on_state_change(state)
        if state is ConnectionState.CONNECTED:
            self._connected.set()
            self._log_connected()
            return
        self._connected.clear()
        if self._warned is state:
            _LOGGER.debug("broker %s: still %s (%s)", self.name, state, error, extra=self._extra)
            return
        self._warned = state
        if lost:
            what = f"lost the connection to {self._address()}"
        else:
            what = f"cannot connect to {self._address()}"
        retry = "retrying slowly" if state is ConnectionState.AUTH_FAILED else "retrying"
        _LOGGER.warning("broker %s: %s (%s); %s", self.name, what, error, retry, extra=self._extra)

    def _log_connected(self) -> None:
        again = "again " if self.connects > 1 else ""
        if self.outage_started is None:
            _LOGGER.info(
                "broker %s: connected %sto %s", self.name, again, self._address(), extra=self._extra
            )
        else:
            _LOGGER.info(
                "broker %s: connected %sto %s after an outage of %s",
                self.name,
                again,
                self._address(),
                duration(time.monotonic() - self.outage_started),
                extra=self._extra,
            )
        self.outage_started = None
        self._warned = None

    def _dispatch(self, topic: str, payload: bytes) -> None:
        """Runs inside paho's read callback: handlers must not block, and never raise out."""
        self.messages += 1
        for handler in self._router.match(topic):
            try:
                handler(topic, payload)
            except Exception:
                self.handler_errors += 1
                _LOGGER.exception(
                    "broker %s: handler for %s failed", self.name, topic, extra=self._extra
                )
