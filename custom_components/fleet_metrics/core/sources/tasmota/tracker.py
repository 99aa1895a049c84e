"""Follows a Tasmota fleet on one broker: who exists (discovery) and what they report.

Both runners use it: the runner turns its output into samples for the sinks, Home Assistant
reads the per-device state for its entities.

Whatever a message cannot give is counted in ``rejects`` under a kind (``too_large``,
``json``, ``shape``, ``name``, ``cap``) with its topic and payload, for the dead-letter file.
What the tracker keeps is bounded (see ``limits``): a topic becomes a device only once it
carries something usable, and the caps push out the least recently seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...rejects import Rejects
from ...sample import CompleteSet, FieldValue, Sample, SetSample
from .discovery import DiscoveryError, TasmotaDevice, parse_config, parse_sensors
from .limits import Limits, normal_mac, valid_topic_level
from .telemetry import (
    STATE_COUNTERS,
    Notes,
    Reading,
    Skipped,
    relay_states,
    sensor_readings,
    state_fields,
)
from .topics import FullTopic

DEFAULT_FULL_TOPICS = ("%prefix%/%topic%/", "%topic%/%prefix%/")
MAX_PAYLOAD = 64 * 1024
SENSOR_COMMANDS = frozenset({"SENSOR", "STATUS10", "STATUS8"})
STATE_COMMANDS = frozenset({"STATE", "STATUS11"})

ReadingKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class DeviceState:
    topic: str
    device: TasmotaDevice | None = None
    online: bool | None = None
    # Least recently seen first; at most Limits.readings of them.
    readings: dict[ReadingKey, Reading] = field(default_factory=dict)
    # What the retained discovery ``sensors`` message showed, for readings no telemetry has
    # brought yet (a reading leaves it when telemetry brings it): lets Home Assistant show a
    # device's sensors at once after a restart. Never a sample: its values may be days old.
    snapshot: dict[ReadingKey, Reading] = field(default_factory=dict)
    health: dict[str, FieldValue] = field(default_factory=dict)
    relays: dict[str, bool] = field(default_factory=dict)
    last_seen: float | None = None
    first_seen: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.device.name if self.device else self.topic

    @property
    def mac(self) -> str | None:
        return self.device.mac if self.device else None

    def tags(self) -> dict[str, str]:
        return {"device": self.name, "topic": self.topic, "mac": self.mac or ""}


class TasmotaTracker:
    """The fleet of one broker.

    ``devices`` is the same dict for the tracker's whole life (Home Assistant holds it),
    least recently seen first. ``rejects`` counts what was skipped; pass the source's so
    that its dead-letter file and self-metrics see it.
    """

    def __init__(
        self,
        discovery_prefix: str = "tasmota/discovery",
        full_topics: Iterable[str] = DEFAULT_FULL_TOPICS,
        max_payload: int = MAX_PAYLOAD,
        on_new_layout: Callable[[FullTopic], None] | None = None,
        rejects: Rejects | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.discovery_prefix = discovery_prefix.rstrip("/")
        self.max_payload = max_payload
        self.limits = limits or Limits()
        self.rejects = rejects if rejects is not None else Rejects("tasmota")
        self.layouts: list[FullTopic] = []
        self.devices: dict[str, DeviceState] = {}
        self.by_mac: dict[str, str] = {}
        self.messages = 0
        self.skipped = Skipped()
        self.evicted = 0
        # Topics of devices discovery never named, least recently seen first: a cap pushes
        # these out before any discovered device.
        self._undiscovered: dict[str, None] = {}
        self._on_new_layout = on_new_layout
        for template in full_topics:
            layout = FullTopic(template)
            if layout not in self.layouts:
                self._append_layout(layout)

    @property
    def parse_errors(self) -> int:
        """Every message (or part of one) skipped so far, whatever the kind."""
        return self.rejects.total

    def set_layout_listener(self, on_new_layout: Callable[[FullTopic], None]) -> None:
        """Who subscribes the filters of layouts that discovery brings later."""
        self._on_new_layout = on_new_layout

    def filters(self) -> list[str]:
        out = [f"{self.discovery_prefix}/+/config", f"{self.discovery_prefix}/+/sensors"]
        for layout in self.layouts:
            out.extend(f for f in layout.filters() if f not in out)
        return out

    def _append_layout(self, layout: FullTopic) -> None:
        self.layouts.append(layout)
        if self._on_new_layout is not None:
            self._on_new_layout(layout)

    def _add_layout(self, layout: FullTopic, topic: str, payload: bytes) -> None:
        if layout in self.layouts:
            return
        if len(self.layouts) >= self.limits.layouts:
            self.rejects.reject(
                "cap",
                f"FullTopic {layout.template!r} not followed: {len(self.layouts)} layouts "
                "is the cap (max_layouts)",
                topic,
                payload,
            )
            return
        self._append_layout(layout)

    def handle(self, topic: str, payload: bytes) -> list[Sample]:
        """Update state from one message; returns the samples it produced."""
        self.messages += 1
        if len(payload) > self.max_payload:
            self.rejects.reject(
                "too_large", f"{len(payload)} bytes is over max_payload", topic, payload
            )
            return []
        if topic.startswith(f"{self.discovery_prefix}/"):
            return self._discovery(topic, payload)
        for layout in self.layouts:
            parts = layout.parse(topic)
            if parts is not None:
                return self._device_message(
                    topic, parts.topic, parts.prefix, parts.command, payload
                )
        return []

    def _decode(self, topic: str, payload: bytes) -> Mapping[str, Any] | None:
        try:
            decoded = orjson.loads(payload)
        except orjson.JSONDecodeError as err:
            self.rejects.reject("json", f"not JSON: {err}"[:300], topic, payload)
            return None
        if not isinstance(decoded, Mapping):
            kind = type(decoded).__name__
            self.rejects.reject("shape", f"a JSON {kind}, not an object", topic, payload)
            return None
        return decoded

    # --- discovery -----------------------------------------------------------------------

    def _discovery(self, topic: str, payload: bytes) -> list[Sample]:
        parts = topic[len(self.discovery_prefix) + 1 :].split("/")
        if len(parts) != 2 or parts[1] not in ("config", "sensors"):
            return []
        topic_mac, kind = parts[0], parts[1]
        mac = normal_mac(topic_mac)
        if not payload:
            # An empty retained payload: the device was removed or discovery switched off.
            if kind == "config" and mac is not None and (known := self.by_mac.get(mac)):
                self.forget(known)
            return []
        raw = self._decode(topic, payload)
        if raw is None:
            return []
        try:
            if kind == "config":
                return self._register(parse_config(topic_mac, raw), topic, payload)
            state = self.by_mac_state(mac) if mac is not None else None
            if state is not None and state.device is not None:
                state.device.sensors = parse_sensors(raw, self.limits.readings)
                self._snapshot(state, raw["sn"])
        except DiscoveryError as err:
            self.rejects.reject(err.kind, str(err), topic, payload)
        return []

    def _snapshot(self, state: DeviceState, sensors: Mapping[str, Any]) -> None:
        """Keep the discovery snapshot of the readings telemetry has not brought yet.

        Parsed as telemetry is, under the same caps. What it skips is not counted: the
        device's telemetry carries the same names and is counted when it arrives.
        """
        notes = Notes(Skipped(), self.limits.readings, self.limits.fields)
        state.snapshot = {
            key: reading
            for reading in sensor_readings(sensors, notes)
            if (key := reading_key(reading)) not in state.readings
        }

    def forget(self, topic: str) -> None:
        """Drop a device (removed by the user, or pushed out by the cap); it returns if it
        reports again."""
        state = self.devices.pop(topic, None)
        self._undiscovered.pop(topic, None)
        if state is not None and state.mac is not None and self.by_mac.get(state.mac) == topic:
            del self.by_mac[state.mac]

    def by_mac_state(self, mac: str) -> DeviceState | None:
        topic = self.by_mac.get(mac.upper())
        return self.devices.get(topic) if topic else None

    def _register(self, device: TasmotaDevice, topic: str, payload: bytes) -> list[Sample]:
        previous = self.by_mac.get(device.mac)
        if previous is not None and previous != device.topic:
            self.forget(previous)  # the device was given a new topic
        state = self.devices.get(device.topic)
        if state is None:
            state = DeviceState(device.topic)
            self._admit(state, topic, payload)
        else:
            self._seen(state)
        if state.device is not None:
            if state.device.mac != device.mac and self.by_mac.get(state.device.mac) == state.topic:
                del self.by_mac[state.device.mac]  # another device took this topic
            device.sensors = device.sensors or state.device.sensors
        state.device = device
        self._undiscovered.pop(device.topic, None)
        self.by_mac[device.mac] = device.topic
        self._add_layout(device.layout(), topic, payload)
        info_tags = {
            **state.tags(),
            "firmware": device.firmware or "",
            "model": device.model or "",
        }
        # One info series per device: a firmware upgrade replaces the old one at once.
        info = CompleteSet(frozenset({"info"}), scope=("topic",))
        return [SetSample("tasmota_device", info_tags, {"info": 1}, time.time_ns(), complete=info)]

    # --- device table --------------------------------------------------------------------

    def _admit(self, state: DeviceState, topic: str, payload: bytes) -> None:
        """Add a device, pushing out the least recently seen one (undiscovered first) when
        the table is full."""
        if len(self.devices) >= self.limits.devices:
            victim = next(iter(self._undiscovered or self.devices))
            self.forget(victim)
            self.evicted += 1
            self.rejects.reject(
                "cap",
                f"{len(self.devices) + 1} devices is the cap (max_devices): forgot {victim!r}",
                topic,
                payload,
            )
        self.devices[state.topic] = state
        if state.device is None:
            self._undiscovered[state.topic] = None

    def _seen(self, state: DeviceState) -> None:
        """Move a device to the most recently seen end."""
        key = state.topic
        if self.devices.get(key) is state:
            del self.devices[key]
            self.devices[key] = state
        if key in self._undiscovered:
            del self._undiscovered[key]
            self._undiscovered[key] = None

    # --- telemetry -----------------------------------------------------------------------

    def _device_message(
        self, topic: str, name: str, prefix: str, command: str, payload: bytes
    ) -> list[Sample]:
        if not (
            command in ("LWT", "STATUS0", "RESULT")
            or command in SENSOR_COMMANDS
            or command in STATE_COMMANDS
            or command.startswith("POWER")
        ):
            return []  # INFO1, UPTIME, MARGINS...: nothing we read
        if not valid_topic_level(name):
            self.rejects.reject("name", f"device topic {name!r:.80} is unusable", topic, payload)
            return []
        state = self.devices.get(name)
        known = state is not None
        if state is None:
            state = DeviceState(name)  # kept only if this message is usable
        samples = self._apply(state, topic, prefix, command, payload)
        if known:
            self._seen(state)
        elif samples:
            self._admit(state, topic, payload)
        else:
            return samples
        state.last_seen = time.monotonic()
        return samples

    def _apply(
        self, state: DeviceState, topic: str, prefix: str, command: str, payload: bytes
    ) -> list[Sample]:
        device = state.device
        now = time.time_ns()
        if command == "LWT":
            text = payload.decode(errors="replace").strip()
            if text == (device.online_payload if device else "Online"):
                state.online = True
            elif text == (device.offline_payload if device else "Offline"):
                state.online = False
            else:
                self.rejects.reject("shape", "LWT is neither online nor offline", topic, payload)
                return []
            return [Sample("tasmota_device", state.tags(), {"online": state.online}, now)]
        if command == "RESULT" or command.startswith("POWER"):
            stripped = payload.strip()
            if stripped.startswith(b"{"):
                body = self._decode(topic, payload)
                relays = relay_states(body) if body is not None else {}
            else:
                relays = relay_states({command: stripped.decode(errors="replace")})
            state.relays.update(relays)
            return self._relay_samples(state, now) if relays else []
        body = self._decode(topic, payload)
        if body is None:
            return []
        notes = Notes(self.skipped, self.limits.readings, self.limits.fields)
        if command == "STATUS0":
            # "Status 0" answers with everything: sensors and state in one reply.
            readings = sensor_readings(_inner(body, "StatusSNS"), notes)
            samples = self._readings(state, readings, now, topic, payload)
            samples += self._state(state, _inner(body, "StatusSTS"), now)
        elif command in SENSOR_COMMANDS:
            if command != "SENSOR":
                body = _inner(body, "StatusSNS")
            samples = self._readings(state, sensor_readings(body, notes), now, topic, payload)
            if samples and prefix == (device.tele if device else "tele"):
                state.online = True
        else:
            samples = self._state(
                state, body if command == "STATE" else _inner(body, "StatusSTS"), now
            )
        self._count(notes, topic, payload)
        return samples

    def _count(self, notes: Notes, topic: str, payload: bytes) -> None:
        if notes.bad_names:
            reason = f"{notes.bad_names} sensor or field names too long or unprintable"
            self.rejects.reject("name", reason, topic, payload)
        if notes.over_cap:
            reason = f"{notes.over_cap} readings or fields over max_readings/max_fields"
            self.rejects.reject("cap", reason, topic, payload)
        if notes.too_deep:
            self.rejects.reject("shape", "objects nested deeper than sensors nest", topic, payload)

    def _state(self, state: DeviceState, body: Mapping[str, Any], now: int) -> list[Sample]:
        health = state_fields(body)
        relays = relay_states(body)
        if not health and not relays:
            return []
        state.health.update(health)
        state.relays.update(relays)
        samples = self._relay_samples(state, now)
        if state.health:
            tags = state.tags()
            samples.insert(
                0, Sample("tasmota_device", tags, dict(state.health), now, STATE_COUNTERS)
            )
        return samples

    def _readings(
        self,
        state: DeviceState,
        readings: list[Reading],
        now: int,
        topic: str,
        payload: bytes,
    ) -> list[Sample]:
        tags = state.tags()
        samples = []
        pushed_out = 0
        kept = state.readings
        for reading in readings:
            key = reading_key(reading)
            state.snapshot.pop(key, None)
            if key in kept:
                del kept[key]  # to the most recently seen end
            elif len(kept) >= self.limits.readings:
                del kept[next(iter(kept))]
                pushed_out += 1
            kept[key] = reading
            samples.append(
                Sample(reading.measurement, {**tags, **reading.tags}, reading.fields, now)
            )
        if pushed_out:
            reason = f"{pushed_out} readings pushed out by max_readings {self.limits.readings}"
            self.rejects.reject("cap", reason, topic, payload)
        return samples

    def _relay_samples(self, state: DeviceState, now: int) -> list[Sample]:
        tags = state.tags()
        return [
            Sample("tasmota_relay", {**tags, "relay": relay}, {"on": on}, now)
            for relay, on in sorted(state.relays.items())
        ]


def reading_key(reading: Reading) -> ReadingKey:
    """What tells a device's readings apart: measurement and tags (sensor, phase...)."""
    return (reading.measurement, tuple(sorted(reading.tags.items())))


def _inner(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The object a STATUS reply wraps its payload in (``{"StatusSNS": {...}}``)."""
    inner = body.get(key)
    return inner if isinstance(inner, Mapping) else {}
