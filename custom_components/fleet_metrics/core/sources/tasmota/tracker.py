"""Follows a Tasmota fleet on one broker: who exists (discovery) and what they report.

Both runners use it: the runner turns its output into samples for the sinks, Home Assistant
reads the per-device state for its entities.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...sample import FieldValue, Sample
from .discovery import DiscoveryError, TasmotaDevice, parse_config, parse_sensors
from .telemetry import (
    STATE_COUNTERS,
    Reading,
    Skipped,
    relay_states,
    sensor_readings,
    state_fields,
)
from .topics import FullTopic

DEFAULT_FULL_TOPICS = ("%prefix%/%topic%/", "%topic%/%prefix%/")
MAX_PAYLOAD = 64 * 1024

ReadingKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class DeviceState:
    topic: str
    device: TasmotaDevice | None = None
    online: bool | None = None
    readings: dict[ReadingKey, Reading] = field(default_factory=dict)
    health: dict[str, FieldValue] = field(default_factory=dict)
    relays: dict[str, bool] = field(default_factory=dict)
    last_seen: float | None = None

    @property
    def name(self) -> str:
        return self.device.name if self.device else self.topic

    @property
    def mac(self) -> str | None:
        return self.device.mac if self.device else None

    def tags(self) -> dict[str, str]:
        return {"device": self.name, "topic": self.topic, "mac": self.mac or ""}


class TasmotaTracker:
    def __init__(
        self,
        discovery_prefix: str = "tasmota/discovery",
        full_topics: Iterable[str] = DEFAULT_FULL_TOPICS,
        max_payload: int = MAX_PAYLOAD,
        on_new_layout: Callable[[FullTopic], None] | None = None,
    ) -> None:
        self.discovery_prefix = discovery_prefix.rstrip("/")
        self.max_payload = max_payload
        self.layouts: list[FullTopic] = []
        self.devices: dict[str, DeviceState] = {}
        self.by_mac: dict[str, str] = {}
        self.messages = 0
        self.parse_errors = 0
        self.skipped = Skipped()
        self._on_new_layout = on_new_layout
        for template in full_topics:
            self._add_layout(FullTopic(template))

    def set_layout_listener(self, on_new_layout: Callable[[FullTopic], None]) -> None:
        """Who subscribes the filters of layouts that discovery brings later."""
        self._on_new_layout = on_new_layout

    def filters(self) -> list[str]:
        out = [f"{self.discovery_prefix}/+/config", f"{self.discovery_prefix}/+/sensors"]
        for layout in self.layouts:
            out.extend(f for f in layout.filters() if f not in out)
        return out

    def _add_layout(self, layout: FullTopic) -> None:
        if layout not in self.layouts:
            self.layouts.append(layout)
            if self._on_new_layout is not None:
                self._on_new_layout(layout)

    def handle(self, topic: str, payload: bytes) -> list[Sample]:
        """Update state from one message; returns the samples it produced."""
        self.messages += 1
        if len(payload) > self.max_payload:
            self.parse_errors += 1
            return []
        if topic.startswith(f"{self.discovery_prefix}/"):
            return self._discovery(topic, payload)
        for layout in self.layouts:
            parts = layout.parse(topic)
            if parts is not None:
                return self._device_message(parts.topic, parts.prefix, parts.command, payload)
        return []

    def _decode(self, payload: bytes) -> Mapping[str, Any] | None:
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.parse_errors += 1
            return None
        if not isinstance(decoded, Mapping):
            self.parse_errors += 1
            return None
        return decoded

    def _discovery(self, topic: str, payload: bytes) -> list[Sample]:
        parts = topic[len(self.discovery_prefix) + 1 :].split("/")
        if len(parts) != 2:
            return []
        mac, kind = parts[0].upper(), parts[1]
        if not payload:
            # An empty retained payload: the device was removed or discovery switched off.
            if kind == "config" and (known := self.by_mac.pop(mac, None)) is not None:
                self.devices.pop(known, None)
            return []
        raw = self._decode(payload)
        if raw is None:
            return []
        try:
            if kind == "config":
                return self._register(parse_config(mac, raw))
            if kind == "sensors" and (state := self.by_mac_state(mac)) and state.device:
                state.device.sensors = parse_sensors(raw)
        except DiscoveryError:
            self.parse_errors += 1
        return []

    def forget(self, topic: str) -> None:
        """Drop a device (removed by the user); it returns if it reports again."""
        state = self.devices.pop(topic, None)
        if state is not None and state.mac is not None:
            self.by_mac.pop(state.mac, None)

    def by_mac_state(self, mac: str) -> DeviceState | None:
        topic = self.by_mac.get(mac.upper())
        return self.devices.get(topic) if topic else None

    def _register(self, device: TasmotaDevice) -> list[Sample]:
        previous = self.by_mac.get(device.mac)
        if previous is not None and previous != device.topic:
            self.devices.pop(previous, None)  # the device was given a new topic
        state = self.devices.setdefault(device.topic, DeviceState(device.topic))
        if state.device is not None:
            device.sensors = device.sensors or state.device.sensors
        state.device = device
        self.by_mac[device.mac] = device.topic
        self._add_layout(FullTopic(device.full_topic, (device.stat, device.tele)))
        info_tags = {
            **state.tags(),
            "firmware": device.firmware or "",
            "model": device.model or "",
        }
        return [Sample("tasmota_device", info_tags, {"info": 1})]

    def _device_message(
        self, topic: str, prefix: str, command: str, payload: bytes
    ) -> list[Sample]:
        state = self.devices.get(topic)
        if state is None:
            state = self.devices[topic] = DeviceState(topic)
        device = state.device
        tele = device.tele if device else "tele"
        state.last_seen = time.monotonic()
        now = time.time_ns()
        if command == "LWT":
            online_payload = device.online_payload if device else "Online"
            state.online = payload.decode(errors="replace").strip() == online_payload
            return [Sample("tasmota_device", state.tags(), {"online": state.online}, now)]
        if command == "STATUS0":
            # "Status 0" answers with everything: sensors and state in one reply.
            body = self._decode(payload)
            if body is None:
                return []
            samples = self._readings(
                state, sensor_readings(_inner(body, "StatusSNS"), self.skipped), now
            )
            return samples + self._state(state, _inner(body, "StatusSTS"), now)
        if command in ("SENSOR", "STATUS10", "STATUS8"):
            body = self._decode(payload)
            if body is None:
                return []
            if command != "SENSOR":
                body = _inner(body, "StatusSNS")
            state.online = True if prefix == tele else state.online
            return self._readings(state, sensor_readings(body, self.skipped), now)
        if command in ("STATE", "STATUS11"):
            body = self._decode(payload)
            if body is None:
                return []
            if command == "STATUS11":
                body = _inner(body, "StatusSTS")
            return self._state(state, body, now)
        if command == "RESULT" or command.startswith("POWER"):
            text = payload.strip()
            if text.startswith(b"{"):
                body = self._decode(payload)
                relays = relay_states(body) if body is not None else {}
            else:
                relays = relay_states({command: text.decode(errors="replace")})
            state.relays.update(relays)
            return self._relay_samples(state, now) if relays else []
        return []

    def _state(self, state: DeviceState, body: Mapping[str, Any], now: int) -> list[Sample]:
        state.health.update(state_fields(body))
        state.relays.update(relay_states(body))
        health = Sample("tasmota_device", state.tags(), dict(state.health), now, STATE_COUNTERS)
        return [health, *self._relay_samples(state, now)]

    def _readings(self, state: DeviceState, readings: list[Reading], now: int) -> list[Sample]:
        tags = state.tags()
        samples = []
        for reading in readings:
            key = (reading.measurement, tuple(sorted(reading.tags.items())))
            state.readings[key] = reading
            samples.append(
                Sample(reading.measurement, {**tags, **reading.tags}, reading.fields, now)
            )
        return samples

    def _relay_samples(self, state: DeviceState, now: int) -> list[Sample]:
        tags = state.tags()
        return [
            Sample("tasmota_relay", {**tags, "relay": relay}, {"on": on}, now)
            for relay, on in sorted(state.relays.items())
        ]


def _inner(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The object a STATUS reply wraps its payload in (``{"StatusSNS": {...}}``)."""
    inner = body.get(key)
    return inner if isinstance(inner, Mapping) else {}
