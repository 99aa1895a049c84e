"""The shared broker session against a real Mosquitto, on the fast path and the public one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import AsyncGenerator, Callable, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.mqtt import session as session_module
from custom_components.fleet_metrics.core.mqtt.fast_path import FastClient
from custom_components.fleet_metrics.core.mqtt.session import (
    BrokerAuthFailed,
    BrokerSession,
    BrokerUnavailable,
    ConnectionState,
    _client,
    check_connection,
    receive,
)
from custom_components.fleet_metrics.core.mqtt.settings import (
    BROKER_SCHEMA,
    TlsFileError,
    tls_context,
)
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.usefixtures("mqtt_path")


def fast() -> Backoff:
    return Backoff(initial=0.05, maximum=0.2)


@contextlib.asynccontextmanager
async def running(session: BrokerSession) -> AsyncGenerator[asyncio.Task[None]]:
    task = asyncio.create_task(session.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_messages_reach_only_matching_handlers(mosquitto: Mosquitto) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    sensors: list[tuple[str, bytes]] = []
    everything: list[str] = []
    session.subscribe("tele/+/SENSOR", lambda t, p: sensors.append((t, p)))
    session.subscribe("tele/#", lambda t, p: everything.append(t))
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        await mosquitto.publish(
            [("tele/plug/SENSOR", b'{"a":1}'), ("tele/plug/STATE", b"{}"), ("other", b"x")]
        )
        await until(lambda: len(everything) == 2)
    assert sensors == [("tele/plug/SENSOR", b'{"a":1}')]
    assert session.messages == 2


async def test_a_failing_handler_does_not_stop_the_session(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    good: list[bytes] = []

    def bad(topic: str, payload: bytes) -> None:
        raise ValueError("broken handler")

    session.subscribe("t", bad)
    session.subscribe("t", lambda t, p: good.append(p))
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        await mosquitto.publish([("t", b"1"), ("t", b"2")])
        await until(lambda: len(good) == 2)
    assert session.handler_errors == 2
    assert "handler for t failed" in caplog.text


async def test_subscribing_while_connected_takes_effect(mosquitto: Mosquitto) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    seen: list[bytes] = []
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        undo = session.subscribe("late", lambda t, p: seen.append(p))
        await asyncio.sleep(0.2)
        await mosquitto.publish([("late", b"1")])
        await until(lambda: seen == [b"1"])
        undo()
        await asyncio.sleep(0.2)
        await mosquitto.publish([("late", b"2")])
        await asyncio.sleep(0.3)
    assert seen == [b"1"]


async def test_broker_restart_mid_stream_resubscribes_and_flows_again(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture, mqtt_path: str
) -> None:
    caplog.set_level(logging.INFO)
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    seen: list[bytes] = []
    session.subscribe("stream/#", lambda t, p: seen.append(p))
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        await mosquitto.publish([(f"stream/{i}", str(i).encode()) for i in range(50)])
        await until(lambda: len(seen) == 50)
        await mosquitto.stop()
        await until(lambda: session.state is not ConnectionState.CONNECTED)
        await asyncio.sleep(0.5)  # several reconnect attempts against a dead port
        await mosquitto.start()
        await until(lambda: session.connected)
        await mosquitto.publish([(f"stream/{i}", str(i).encode()) for i in range(50, 100)])
        await until(lambda: len(seen) == 100)
    assert seen == [str(i).encode() for i in range(100)]
    assert session.reconnects == 1
    # Only the fast path reads the socket itself, so only it tells an end of stream apart.
    reason = "closed by the broker" if mqtt_path == "fast" else "connection lost"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"broker home: lost the connection to 127.0.0.1:{mosquitto.port} ({reason}); retrying"
    ], "a lasting outage is logged once, with a reason"
    assert f"broker home: connected to 127.0.0.1:{mosquitto.port}" in caplog.messages
    assert any(
        m.startswith(
            f"broker home: connected again to 127.0.0.1:{mosquitto.port} after an outage of "
        )
        for m in caplog.messages
    )
    assert session.outage_started is None


async def test_broker_down_at_start_is_not_an_error(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    session = BrokerSession("home", broker.settings, backoff=fast())
    seen: list[bytes] = []
    session.subscribe("x", lambda t, p: seen.append(p))
    async with running(session) as task:
        await asyncio.sleep(0.4)
        assert not task.done()
        assert session.state is ConnectionState.DISCONNECTED
        await broker.start()
        try:
            await until(lambda: session.connected)
            await broker.publish([("x", b"late")])
            await until(lambda: seen == [b"late"])
        finally:
            await broker.stop()


async def test_wrong_credentials_are_reported_and_retried_slowly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        settings: dict[str, Any] = {**broker.settings, "username": "fleet", "password": "wrong"}
        with pytest.raises(BrokerAuthFailed):
            await check_connection(settings)
        session = BrokerSession(
            "home", settings, backoff=fast(), auth_backoff=Backoff(initial=30, maximum=60)
        )
        async with running(session):
            await until(lambda: session.state is ConnectionState.AUTH_FAILED)
            await asyncio.sleep(0.3)
        assert session.connects == 0
        assert caplog.text.count("credentials refused") == 1
        await check_connection({**settings, "password": "right"})
    finally:
        await broker.stop()


async def test_check_connection_to_nothing() -> None:
    with pytest.raises(BrokerUnavailable):
        await check_connection({"host": "127.0.0.1", "port": free_port()})


async def test_mqtt_5_messages_with_properties(mosquitto: Mosquitto) -> None:
    session = BrokerSession("home", {**mosquitto.settings, "protocol": "5"}, backoff=fast())
    seen: list[tuple[str, bytes]] = []
    session.subscribe("v5/#", lambda t, p: seen.append((t, p)))
    properties = Properties(PacketTypes.PUBLISH)
    properties.UserProperty = [("origin", "test")]
    properties.ContentType = "application/json"
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        async with aiomqtt.Client(
            "127.0.0.1", mosquitto.port, protocol=aiomqtt.ProtocolVersion.V5
        ) as publisher:
            await publisher.publish("v5/a", b"five", properties=properties)
            await publisher.publish("v5/b", b"plain")
        await until(lambda: len(seen) == 2)
    assert seen == [("v5/a", b"five"), ("v5/b", b"plain")]


async def test_a_burst_arrives_whole_and_in_order(mosquitto: Mosquitto) -> None:
    """Thousands of messages of mixed sizes, read many per socket read."""
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    seen: list[tuple[str, bytes]] = []
    session.subscribe("burst/+", lambda t, p: seen.append((t, p)))
    sent = [(f"burst/{i % 7}", str(i).encode() * (1 + i % 50)) for i in range(5000)]
    sent.insert(2500, ("burst/big", bytes(range(256)) * 400))  # 100 KiB, several reads
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        async with aiomqtt.Client("127.0.0.1", mosquitto.port) as publisher:
            for topic, payload in sent:
                await publisher.publish(topic, payload)
        await until(lambda: len(seen) == len(sent))
    assert seen == sent
    assert session.messages == len(sent)


async def test_qos_1_deliveries_go_through_paho_and_are_acknowledged(
    mosquitto: Mosquitto, mqtt_path: str
) -> None:
    seen: list[tuple[str, bytes]] = []
    deliver = lambda t, p: seen.append((t, p))  # noqa: E731
    client = _client(mosquitto.settings, "qos1-test", deliver)
    assert isinstance(client, FastClient) is (mqtt_path == "fast")
    async with client:
        receiving = asyncio.create_task(receive(client, deliver))
        await client.subscribe("q/#", qos=1)
        await mosquitto.publish([("q/1", b"one"), ("q/2", b"two")])
        await until(lambda: len(seen) == 2)
        assert client._client._in_messages == {}  # nothing left waiting for an answer
        receiving.cancel()
    assert seen == [("q/1", b"one"), ("q/2", b"two")]


async def test_tls_with_client_certificate(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, tls=True)
    await broker.start()
    try:
        settings: dict[str, Any] = {
            **broker.settings,
            "tls": True,
            "ca_file": str(tmp_path / "ca.crt"),
            "cert_file": str(tmp_path / "client.crt"),
            "key_file": str(tmp_path / "client.key"),
        }
        await check_connection(settings)
        with pytest.raises(BrokerUnavailable):  # the broker demands a client certificate
            await check_connection({**settings, "cert_file": "", "key_file": ""}, timeout=2)
        with pytest.raises(BrokerUnavailable):  # a CA that did not sign the server
            await check_connection({**settings, "ca_file": ""}, timeout=2)
        session = BrokerSession("secure", settings, backoff=fast())
        seen: list[bytes] = []
        session.subscribe("secure/#", lambda t, p: seen.append(p))
        sent = [b"small", bytes(range(256)) * 300, b"after"]  # 75 KiB spans TLS records
        async with running(session):
            await asyncio.wait_for(session.wait_connected(), 10)
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, tls_params=aiomqtt.TLSParameters(
                    ca_certs=settings["ca_file"], certfile=settings["cert_file"],
                    keyfile=settings["key_file"],
                ),
            ) as publisher:  # fmt: skip
                for payload in sent:
                    await publisher.publish("secure/data", payload)
            await until(lambda: len(seen) == len(sent))
        assert seen == sent
    finally:
        await broker.stop()


def _tls_settings(broker: Mosquitto, workdir: Path) -> dict[str, Any]:
    return {
        **broker.settings,
        "tls": True,
        "ca_file": str(workdir / "ca.crt"),
        "cert_file": str(workdir / "client.crt"),
        "key_file": str(workdir / "client.key"),
    }


@pytest.fixture
def tls_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The thread of every TLS context the session module builds (the real builder runs)."""
    threads: list[int] = []

    def recording(settings: Mapping[str, Any]) -> ssl.SSLContext | None:
        threads.append(threading.get_ident())
        return tls_context(settings)

    monkeypatch.setattr(session_module, "tls_context", recording)
    return threads


async def test_the_tls_context_is_built_off_the_loop_at_each_connect_and_kept_when_unreadable(
    tmp_path: Path, tls_builds: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    broker = Mosquitto(tmp_path, tls=True)
    await broker.start()
    try:
        settings = _tls_settings(broker, tmp_path)
        loop_thread = threading.get_ident()
        await check_connection(settings)
        assert len(tls_builds) == 1 and tls_builds[0] != loop_thread

        session = BrokerSession("secure", settings, backoff=fast())
        seen: list[bytes] = []
        session.subscribe("secure/#", lambda t, p: seen.append(p))
        async with running(session):
            await asyncio.wait_for(session.wait_connected(), 10)
            for restart in range(3):
                await broker.stop()
                await until(lambda: not session.connected)
                await asyncio.sleep(0.3)  # failed attempts against a closed port, too
                await broker.start()
                await until(lambda: session.connected)
                assert session.reconnects == restart + 1
            builds = len(tls_builds)
            assert builds >= 1 + 4, "the check, then every connect builds it again"
            # A file that cannot be read at a reconnect: the context loaded before is kept.
            (tmp_path / "client.key").unlink()
            await broker.stop()
            await until(lambda: not session.connected)
            await broker.start()
            await until(lambda: session.connected)
            async with aiomqtt.Client(
                "127.0.0.1", broker.port, tls_params=aiomqtt.TLSParameters(
                    ca_certs=settings["ca_file"], certfile=str(tmp_path / "server.crt"),
                    keyfile=str(tmp_path / "server.key"),
                ),
            ) as publisher:  # the broker takes any certificate of its CA  # fmt: skip
                await publisher.publish("secure/after", b"reconnected")
            await until(lambda: seen == [b"reconnected"])
        assert session.reconnects == 4
        assert loop_thread not in tls_builds
        kept = [r for r in caplog.records if "using the ones loaded before" in r.getMessage()]
        assert len(kept) == 1, "said once, however many attempts"
    finally:
        await broker.stop()


async def test_a_tls_file_unreadable_at_the_first_connect_fails_as_it_always_did(
    tmp_path: Path, tls_builds: list[int]
) -> None:
    """Settings checked while the files were fine; a file gone by the time the session
    connects is a TlsFileError naming it, out of ``run`` and ``check_connection``."""
    broker = Mosquitto(tmp_path, tls=True)
    settings = _tls_settings(broker, tmp_path)
    BROKER_SCHEMA(settings)  # the check at start passes
    (tmp_path / "client.crt").write_text("not a certificate\n")
    with pytest.raises(TlsFileError) as expected:
        tls_context(settings)
    with pytest.raises(TlsFileError) as checked:
        await check_connection(settings)
    session = BrokerSession("secure", settings, backoff=fast())
    with pytest.raises(TlsFileError) as ran:
        await asyncio.wait_for(session.run(), 10)
    for err in (checked.value, ran.value):
        assert (err.key, str(err)) == (expected.value.key, str(expected.value))
    assert expected.value.key == "cert_file"
    assert len(tls_builds) == 2 and threading.get_ident() not in tls_builds
    assert session.connects == 0


def test_a_client_for_tls_settings_needs_the_context_built_beforehand() -> None:
    with pytest.raises(ValueError, match="no TLS context"):
        _client({"host": "127.0.0.1", "tls": True}, "x", lambda t, p: None)
