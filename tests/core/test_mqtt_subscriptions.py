"""One source's bad subscription never ends the broker session the others share.

Three kinds, each against a real Mosquitto and on both client paths: a filter invalid by
syntax (refused at once, to the source that asked), a filter the broker refuses in its
SUBACK, and a SUBSCRIBE the broker never answers.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.mqtt.session import BrokerSession, ConnectionState
from tests.core.test_mqtt_session import fast, running, until
from tests.mosquitto import DroppingProxy, Mosquitto, refusing_subscriptions

pytestmark = pytest.mark.usefixtures("mqtt_path")

BAD = ["", "a/#/b", "tele/x+/SENSOR", "tele/\x00/SENSOR", "tele/\ud800", "x" * 65_536, "a/" * 201]


async def test_an_invalid_filter_fails_only_the_source_that_asked(mosquitto: Mosquitto) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=fast())
    seen: list[bytes] = []
    session.subscribe("good/#", lambda t, p: seen.append(p))
    with pytest.raises(ValueError, match="invalid MQTT topic filter"):
        session.subscribe(BAD[1], lambda t, p: None)  # before the connection, too
    async with running(session):
        await asyncio.wait_for(session.wait_connected(), 10)
        for bad in BAD:
            with pytest.raises(ValueError, match="invalid MQTT topic filter"):
                session.subscribe(bad, lambda t, p: None)
        await asyncio.sleep(0.2)  # a filter that slipped through would cost the connection now
        await mosquitto.publish([("good/1", b"still here")])
        await until(lambda: seen == [b"still here"])
        assert session.connected
    assert session.connects == 1, "the shared connection never dropped"
    assert session.subscription_failures == 0


@pytest.mark.parametrize(
    ("protocol", "code", "reason"),
    [("3.1.1", "0x80", "unspecified error"), ("5", "0x87", "not authorized")],
)
async def test_a_refused_filter_is_logged_once_counted_and_the_others_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, protocol: str, code: str, reason: str
) -> None:
    broker = Mosquitto(tmp_path, config=refusing_subscriptions(tmp_path, ["forbidden/#"]))
    await broker.start()
    try:
        settings = {**broker.settings, "protocol": protocol}
        session = BrokerSession("home", settings, backoff=fast())
        allowed: list[bytes] = []
        session.subscribe("forbidden/#", lambda t, p: None)
        session.subscribe("allowed/#", lambda t, p: allowed.append(p))
        async with running(session):
            await asyncio.wait_for(session.wait_connected(), 10)
            await broker.publish([("allowed/1", b"1")])
            await until(lambda: allowed == [b"1"])
            assert session.subscription_failures == 1
            assert list(session.failed_subscriptions) == ["forbidden/#"]
            assert session.failed_subscriptions["forbidden/#"].endswith(f"({code})")

            session.subscribe("forbidden/late", lambda t, p: None)  # while connected
            await until(lambda: session.subscription_failures == 2)

            # Every filter is sent again, each on its own, after the broker comes back.
            await broker.stop()
            await until(lambda: not session.connected)
            await broker.start()
            await until(lambda: session.connected)
            await broker.publish([("allowed/2", b"2")])
            await until(lambda: allowed == [b"1", b"2"])
            await until(lambda: session.subscription_failures == 4)
        assert session.reconnects == 1
        warnings = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and "subscription" in r.getMessage()
        ]
        assert warnings == [
            f"broker home: subscription to {f!r} failed (refused: {reason} ({code})); its "
            "messages will not arrive, the other subscriptions go on"
            for f in ("forbidden/#", "forbidden/late")
        ], "one warning per refused filter, however often it is refused"
    finally:
        await broker.stop()


async def test_an_unanswered_subscribe_times_out_alone(
    mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    async with DroppingProxy(mosquitto.port, silenced="slow/#") as proxy:
        settings = {**mosquitto.settings, "port": proxy.port}
        session = BrokerSession("home", settings, backoff=fast(), timeout=0.5)
        seen: list[bytes] = []
        session.subscribe("slow/#", lambda t, p: None)
        session.subscribe("quick/#", lambda t, p: seen.append(p))
        async with running(session):
            await asyncio.wait_for(session.wait_connected(), 10)
            await mosquitto.publish([("quick/1", b"1")])
            await until(lambda: seen == [b"1"])
            assert session.failed_subscriptions == {"slow/#": "timed out after 0.5 s"}
            await asyncio.sleep(0.6)  # longer than the timeout: nothing else gives up
            await mosquitto.publish([("quick/2", b"2")])
            await until(lambda: seen == [b"1", b"2"])
            assert session.state is ConnectionState.CONNECTED
        assert proxy.dropped == 1
        assert session.connects == 1
        assert session.subscription_failures == 1
        assert "subscription to 'slow/#' failed (timed out after 0.5 s)" in caplog.text
