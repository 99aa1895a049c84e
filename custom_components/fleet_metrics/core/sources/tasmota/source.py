"""Tasmota as a runner source on a shared broker session."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import voluptuous as vol

from ...mqtt.session import BrokerSession
from ...sample import Sample
from ...source import Emit, Source, SourceContext
from ...validators import integer, number
from ..newcomers import DEFAULT_HOLD, NewcomerGate
from .limits import (
    DEFAULT_DEVICES,
    DEFAULT_FIELDS,
    DEFAULT_LAYOUTS,
    DEFAULT_READINGS,
    MAX_FULL_TOPIC,
    Limits,
)
from .topics import FullTopic
from .tracker import DEFAULT_FULL_TOPICS, MAX_PAYLOAD, TasmotaTracker


def full_topic(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_FULL_TOPIC:
        raise vol.Invalid(f"expected a FullTopic of at most {MAX_FULL_TOPIC} characters")
    try:
        return FullTopic(value).template
    except ValueError as err:
        raise vol.Invalid(str(err)) from err


def plain_topic(value: Any) -> str:
    """A topic to put ``/+/config`` under: not empty, no wildcard."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a topic such as tasmota/discovery")
    text = value.strip().rstrip("/")
    if not text:
        raise vol.Invalid("must not be empty; Tasmota's default is tasmota/discovery")
    if "+" in text or "#" in text:
        raise vol.Invalid(f"{value!r} holds an MQTT wildcard; give a plain topic")
    if "\0" in text:
        raise vol.Invalid(f"{value!r} holds a NUL character")
    return text


SCHEMA: dict[Any, Any] = {
    vol.Required("broker"): str,
    vol.Optional("discovery_prefix", default="tasmota/discovery"): plain_topic,
    vol.Optional("full_topics", default=list(DEFAULT_FULL_TOPICS)): vol.All(
        [full_topic], vol.Length(min=1)
    ),
    vol.Optional("max_payload", default=MAX_PAYLOAD): integer(256, 16 * 1024 * 1024),
    # Caps on what the wire can make the tracker hold (see limits.py).
    vol.Optional("max_devices", default=DEFAULT_DEVICES): integer(1, 1_000_000),
    vol.Optional("max_layouts", default=DEFAULT_LAYOUTS): integer(1, 256),
    vol.Optional("max_readings", default=DEFAULT_READINGS): integer(1, 10_000),
    vol.Optional("max_fields", default=DEFAULT_FIELDS): integer(1, 10_000),
    # A new device's samples wait this long, and are dropped if the device was forgotten.
    vol.Optional("new_device_hold", default=DEFAULT_HOLD): number(0, 60),
}

HELP = {
    "tasmota_device_online": "1 while the device's LWT says Online.",
    "tasmota_device_info": "Constant 1, labelled with firmware and model from discovery.",
    "tasmota_device_uptime_seconds": "Time since the device booted.",
    "tasmota_device_heap_free_bytes": "Free heap memory.",
    "tasmota_device_load_average": "Tasmota's loop load indicator (about 19 at Sleep 50).",
    "tasmota_device_wifi_quality_ratio": "Wi-Fi link quality, 0 to 1 (Tasmota's RSSI %).",
    "tasmota_device_wifi_signal_dbm": "Wi-Fi signal strength.",
    "tasmota_device_wifi_links": "Wi-Fi (re)connections since boot.",
    "tasmota_device_wifi_downtime_seconds": "Time without Wi-Fi since boot.",
    "tasmota_device_mqtt_connections": "MQTT (re)connections since boot.",
    "tasmota_relay_on": "1 while the relay is switched on.",
    "tasmota_switch_on": "1 while the switch input is on.",
    "tasmota_energy_power_watts": "Active power (per phase where the meter has several).",
    "tasmota_energy_total_joules": "Energy since TotalStartTime.",
    "tasmota_sensor_temperature_celsius": "Temperature, converted from Fahrenheit if needed.",
    "tasmota_sensor_humidity_ratio": "Relative humidity, 0 to 1.",
    "tasmota_sensor_pressure_pascals": "Air pressure, converted from PressureUnit.",
}


class TasmotaSource(Source):
    kind = "tasmota"
    HELP: ClassVar[dict[str, str]] = HELP

    def __init__(self, name: str, config: Any, context: SourceContext | None = None) -> None:
        super().__init__(name, config, context)
        self.session: BrokerSession = self.context.broker(config["broker"])

    async def run(self, emit: Emit) -> None:
        undo: list[Any] = []

        def first_seen(topic: str) -> float | None:
            state = tracker.devices.get(topic)
            return None if state is None else state.first_seen

        def send(samples: list[Sample]) -> None:
            for sample in samples:
                emit(sample)
            if samples:
                self.stats.emitted(len(samples))

        def handle(topic: str, payload: bytes) -> None:
            samples = tracker.handle(topic, payload)
            if samples:
                device = samples[0].tags.get("topic", "")
                send(gate.admit(device, first_seen(device), samples))

        guarded = self.rejects.guard(handle)
        # A sink that raises on a released sample is counted like one raising on a fresh one.
        release = self.rejects.guard(lambda _topic, _payload: send(gate.release(first_seen)))

        def on_message(topic: str, payload: bytes) -> None:
            guarded(topic, payload)
            self.stats.messages = tracker.messages
            self.stats.parse_errors = self.rejects.total

        def subscribe(layout: FullTopic) -> None:
            undo.extend(self.session.subscribe(f, on_message) for f in layout.filters())

        cfg = self.config
        tracker = TasmotaTracker(
            cfg["discovery_prefix"],
            cfg["full_topics"],
            cfg["max_payload"],
            on_new_layout=subscribe,
            rejects=self.rejects,
            limits=Limits(
                devices=cfg["max_devices"],
                layouts=cfg["max_layouts"],
                readings=cfg["max_readings"],
                fields=cfg["max_fields"],
            ),
        )
        gate = self.gate = NewcomerGate(cfg["new_device_hold"], cfg["max_devices"])
        prefix = tracker.discovery_prefix
        undo.append(self.session.subscribe(f"{prefix}/+/config", on_message))
        undo.append(self.session.subscribe(f"{prefix}/+/sensors", on_message))
        self.tracker = tracker
        try:
            while True:  # messages arrive through the session; this releases newcomers
                await asyncio.sleep(max(0.1, gate.hold / 2))
                release("", b"")
        finally:
            for unsubscribe in undo:
                unsubscribe()
