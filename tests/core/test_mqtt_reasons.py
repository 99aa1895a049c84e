"""A broker outage is logged once, with a readable reason, and its end with its length.

The reasons come from real failures: a refused port, a name no resolver knows, a server
that accepts and never answers, wrong credentials on Mosquitto, a broker that goes away.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from custom_components.fleet_metrics.core.mqtt.reasons import describe, duration
from custom_components.fleet_metrics.core.mqtt.session import (
    BrokerAuthFailed,
    BrokerSession,
    BrokerUnavailable,
    check_connection,
)
from tests.core.test_mqtt_session import fast, running, until
from tests.mosquitto import Mosquitto, free_port, silent_server

both_paths = pytest.mark.usefixtures("mqtt_path")

UNRESOLVABLE = "no-such-broker.invalid"  # RFC 2606: never resolves


def resolver_says(host: str) -> str:
    """What this machine's resolver answers for ``host``, as the reason should put it."""
    try:
        socket.getaddrinfo(host, 1883)
    except socket.gaierror as err:
        text = err.strerror or str(err)
        return text[:1].lower() + text[1:]
    pytest.fail(f"{host} resolved")


async def unavailable_because(settings: dict[str, Any], timeout: float = 10) -> str:
    with pytest.raises(BrokerUnavailable) as raised:
        await check_connection(settings, timeout=timeout)
    return str(raised.value)


@both_paths
async def test_a_refused_port() -> None:
    reason = await unavailable_because({"host": "127.0.0.1", "port": free_port()})
    assert reason == "connection refused"


@both_paths
async def test_a_name_that_does_not_resolve() -> None:
    reason = await unavailable_because({"host": UNRESOLVABLE, "port": 1883})
    assert reason == resolver_says(UNRESOLVABLE)


@both_paths
async def test_a_server_that_never_answers_connect() -> None:
    async with silent_server() as port:
        started = time.monotonic()
        reason = await unavailable_because({"host": "127.0.0.1", "port": port}, timeout=0.4)
    assert reason == "timed out after 0.4 s"
    assert 0.3 < time.monotonic() - started < 5


@both_paths
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_wrong_credentials(tmp_path: Path, protocol: str) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        settings = {**broker.settings, "protocol": protocol, "username": "fleet"}
        with pytest.raises(BrokerAuthFailed, match=r"^credentials refused$"):
            await check_connection({**settings, "password": "wrong"})
        with pytest.raises(BrokerAuthFailed, match=r"^credentials refused$"):
            await check_connection({**settings, "username": "", "password": ""})
        await check_connection({**settings, "password": "right"})
    finally:
        await broker.stop()


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name.endswith("mqtt.session") and r.levelno >= logging.INFO
    ]


@both_paths
async def test_unreachable_at_start_is_one_warning_then_one_info_with_the_length(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="custom_components.fleet_metrics.core.mqtt.session")
    broker = Mosquitto(tmp_path)
    session = BrokerSession("home", broker.settings, backoff=fast())
    address = f"127.0.0.1:{broker.port}"
    async with running(session):
        await until(lambda: session.outage_started is not None)
        started = session.outage_started
        assert started is not None and started <= time.monotonic()
        await asyncio.sleep(0.6)  # several retries
        retries = [r for r in caplog.records if "still disconnected" in r.getMessage()]
        assert len(retries) >= 2
        assert all(r.levelno == logging.DEBUG for r in retries)
        await broker.start()
        try:
            await until(lambda: session.connected)
            assert session.outage_started is None
            assert session.last_error is None
        finally:
            await broker.stop()
    lines = outage_lines(caplog)
    assert lines[0] == (
        logging.WARNING,
        f"broker home: cannot connect to {address} (connection refused); retrying",
    )
    assert lines[1][0] == logging.INFO
    assert lines[1][1].startswith(f"broker home: connected to {address} after an outage of ")
    assert lines[1][1].endswith(" s")


@both_paths
async def test_a_lost_broker_is_one_warning_and_its_return_one_info(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture, mqtt_path: str
) -> None:
    caplog.set_level(logging.INFO)  # the INFO lines, with or without Home Assistant's harness
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    address = f"127.0.0.1:{mosquitto.port}"
    async with running(session):
        await until(lambda: session.connected)
        await mosquitto.stop()
        await until(lambda: session.outage_started is not None)
        lost_at = session.outage_started
        await asyncio.sleep(0.5)
        assert session.outage_started == lost_at, "retries do not move the outage's start"
        await mosquitto.start()
        await until(lambda: session.connected)
    reason = "closed by the broker" if mqtt_path == "fast" else "connection lost"
    lines = outage_lines(caplog)
    assert lines[:2] == [
        (logging.INFO, f"broker home: connected to {address}"),
        (logging.WARNING, f"broker home: lost the connection to {address} ({reason}); retrying"),
    ]
    assert len(lines) == 3
    assert lines[2][1].startswith(f"broker home: connected again to {address} after an outage")


@both_paths
async def test_a_silent_server_and_wrong_credentials_in_a_session(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with silent_server() as port:
        session = BrokerSession("home", {"host": "127.0.0.1", "port": port}, timeout=0.3)
        async with running(session):
            await until(lambda: session.last_error is not None)
        assert session.last_error == "timed out after 0.3 s"
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        settings = {**broker.settings, "username": "fleet", "password": "wrong"}
        session = BrokerSession("cloud", settings, backoff=fast(), auth_backoff=fast())
        async with running(session):
            await asyncio.sleep(0.5)
        assert session.connects == 0
    finally:
        await broker.stop()
    warnings = [m for level, m in outage_lines(caplog) if level == logging.WARNING]
    assert warnings == [
        f"broker home: cannot connect to 127.0.0.1:{port} (timed out after 0.3 s); retrying",
        f"broker cloud: cannot connect to 127.0.0.1:{broker.port} (credentials refused); "
        "retrying slowly",
    ]
    assert "[code:" not in caplog.text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (2.34, "2.3 s"), (45.4, "45 s"), (60, "1 min"), (123, "2 min 3 s"),
     (3600, "1 h"), (3 * 3600 + 5 * 60 + 1, "3 h 5 min 1 s"), (90_000, "25 h")],
)  # fmt: skip
def test_outage_lengths_read_naturally(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def disconnected(reason: str) -> aiomqtt.MqttCodeError:
    return aiomqtt.MqttCodeError(ReasonCode(PacketTypes.DISCONNECT, reason), "Unexpected")


def wrapped(cause: BaseException) -> aiomqtt.MqttError:
    """As aiomqtt's message iterator raises it when the connection ends."""
    try:
        raise aiomqtt.MqttError("Disconnected during message iteration") from cause
    except aiomqtt.MqttError as err:
        return err


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (disconnected("Unspecified error"), "connection lost"),
        (wrapped(disconnected("Unspecified error")), "connection lost"),
        (disconnected("Keep alive timeout"), "no answer from the broker within the keepalive"),
        (disconnected("Session taken over"), "disconnected by the broker: session taken over"),
        (
            MqttConnectError(ReasonCode(PacketTypes.CONNACK, "Server unavailable")),
            "refused by the broker: server unavailable",
        ),
        (
            MqttConnectError(ReasonCode(PacketTypes.CONNACK, "Not authorized")),
            "credentials refused",
        ),
        (
            aiomqtt.MqttCodeError(MQTTErrorCode.MQTT_ERR_NO_CONN, "Could not subscribe"),
            "could not subscribe",
        ),
        (aiomqtt.MqttError("Operation timed out"), "timed out after 10 s"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
    ],
)
def test_paho_and_aiomqtt_codes_read_as_reasons(error: BaseException, reason: str) -> None:
    """MQTT 5 brokers may name why they disconnect (Mosquitto 2.0 just closes)."""
    assert describe(error, 10) == reason


@both_paths
async def test_a_tls_broker_that_wants_a_client_certificate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mqtt_path: str
) -> None:
    """Each attempt fails the same way: one WARNING, and nothing from paho above DEBUG."""
    broker = Mosquitto(tmp_path, tls=True)
    await broker.start()
    try:
        settings = {**broker.settings, "tls": True, "ca_file": str(tmp_path / "ca.crt")}
        session = BrokerSession("secure", settings, backoff=fast(), timeout=0.5)
        async with running(session):
            await asyncio.sleep(1.5)
    finally:
        await broker.stop()
    assert session.connects == 0
    # The fast path reads the socket, so it sees the TLS alert before CONNACK is due.
    reason = (
        "TLS error: tlsv13 alert certificate required"
        if mqtt_path == "fast"
        else "timed out after 0.5 s"
    )
    # The session's and paho's records. On the public path aiomqtt's own write watcher can
    # meet the closed socket, which the event loop's exception handler reports (the fast path
    # guards that race; see fast_path.FastClient).
    logged = [
        r
        for r in caplog.records
        if r.levelno > logging.INFO
        and r.name.startswith(("custom_components.fleet_metrics", "paho"))
    ]
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (
            logging.WARNING,
            f"broker secure: cannot connect to 127.0.0.1:{broker.port} ({reason}); retrying",
        )
    ]
