"""The fast path's check: what it needs from aiomqtt and paho, and the fallback without it."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiomqtt
import pytest

from custom_components.fleet_metrics.core.mqtt import fast_path
from custom_components.fleet_metrics.core.mqtt.session import BrokerSession, _client
from tests.core.test_mqtt_session import fast, running, until
from tests.mosquitto import Mosquitto

FAST_PATH_LOGGER = "custom_components.fleet_metrics.core.mqtt.fast_path"


async def test_the_installed_libraries_have_everything() -> None:
    assert fast_path.missing(aiomqtt.Client("localhost")) == []


class _PahoWithoutSockRecv:
    def loop_read(self, max_packets: int = 1) -> int:
        return 0

    def loop_write(self) -> int:
        return 0


class _Reshaped(aiomqtt.Client):
    """As a future aiomqtt might look: a callback with another signature, one gone."""

    def _on_message(  # type: ignore[override]
        self, client: Any, userdata: Any, message: Any, extra: Any
    ) -> None:
        pass

    _on_socket_open = None  # type: ignore[assignment]

    def _misc_loop(self) -> None:  # type: ignore[override]  # no longer a coroutine
        pass


async def test_each_missing_or_changed_member_is_named() -> None:
    client = _Reshaped("localhost")
    del client._misc_task
    client._client = _PahoWithoutSockRecv()  # type: ignore[assignment]
    assert fast_path.missing(client) == [
        "aiomqtt.Client._on_message taking 3 arguments",
        "aiomqtt.Client._on_socket_open",
        "aiomqtt.Client._misc_loop as a coroutine",
        "aiomqtt.Client._misc_task",
        "paho.mqtt.client.Client._sock_recv",
    ]


async def test_other_major_versions_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    versions = {"aiomqtt": "3.0.0", "paho-mqtt": "2.2.0"}
    monkeypatch.setattr(fast_path, "INSTALLED", versions)
    assert fast_path.missing(aiomqtt.Client("localhost")) == ["aiomqtt 2.x (found 3.0.0)"]


async def test_without_the_fast_path_sessions_fall_back_with_one_warning(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    versions = {"aiomqtt": "2.5.1", "paho-mqtt": "3.0.0"}
    monkeypatch.setattr(fast_path, "INSTALLED", versions)
    monkeypatch.setattr(fast_path, "_verdict", None)
    first, second = (BrokerSession(n, mosquitto.settings, backoff=fast()) for n in "ab")
    seen: dict[str, list[bytes]] = {"a": [], "b": []}
    first.subscribe("t/#", lambda t, p: seen["a"].append(p))
    second.subscribe("t/#", lambda t, p: seen["b"].append(p))
    async with running(first), running(second):
        await asyncio.wait_for(first.wait_connected(), 10)
        await asyncio.wait_for(second.wait_connected(), 10)
        assert type(first._client) is aiomqtt.Client
        await mosquitto.publish([("t/1", b"1"), ("t/2", b"2")])
        await until(lambda: seen == {"a": [b"1", b"2"], "b": [b"1", b"2"]})
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == FAST_PATH_LOGGER]
    assert logged == [
        (
            logging.WARNING,
            "MQTT fast path off, using aiomqtt's public message iterator (slower): the "
            "installed libraries lack paho-mqtt 2.x (found 3.0.0)",
        )
    ], "one warning, however many sessions start"


async def test_forcing_the_public_path_is_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fast_path, "ENABLED", False)
    monkeypatch.setattr(fast_path, "_verdict", None)
    client = _client({"host": "127.0.0.1"}, "x", lambda t, p: None)
    assert type(client) is aiomqtt.Client
    assert not [r for r in caplog.records if r.name == FAST_PATH_LOGGER]
