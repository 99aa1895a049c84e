"""Tasmota native discovery: ``tasmota/discovery/<MAC>/config`` and ``/sensors``.

Discovery is what the tracker trusts most (it adds MQTT subscriptions for a device's
FullTopic), so every name in it is checked here before it is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .limits import (
    MAX_FULL_TOPIC,
    MAX_NAME,
    MAX_PREFIX,
    normal_mac,
    valid_name,
    valid_topic_level,
)
from .topics import FullTopic

DEFAULT_FULL_TOPIC = "%prefix%/%topic%/"
DEFAULT_PREFIXES = ("cmnd", "stat", "tele")


@dataclass(slots=True)
class TasmotaDevice:
    mac: str
    name: str
    topic: str
    full_topic: str = DEFAULT_FULL_TOPIC
    prefixes: tuple[str, str, str] = DEFAULT_PREFIXES
    firmware: str | None = None
    model: str | None = None
    ip: str | None = None
    hostname: str | None = None
    online_payload: str = "Online"
    offline_payload: str = "Offline"
    relays: int = 0
    sensors: list[str] = field(default_factory=list)

    @property
    def tele(self) -> str:
        return self.prefixes[2]

    @property
    def stat(self) -> str:
        return self.prefixes[1]

    def layout(self) -> FullTopic:
        return FullTopic(self.full_topic, (self.stat, self.tele))


class DiscoveryError(ValueError):
    """A discovery payload we cannot use; ``kind`` is how it is counted."""

    def __init__(self, message: str, kind: str = "shape") -> None:
        super().__init__(message)
        self.kind = kind


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    """An optional text; one too long or unprintable is left out rather than kept."""
    value = raw.get(key)
    return value if isinstance(value, str) and valid_name(value) else None


def _prefixes(raw: Any) -> tuple[str, str, str]:
    if raw is None:
        return DEFAULT_PREFIXES
    if not (isinstance(raw, list) and len(raw) == 3 and all(isinstance(p, str) for p in raw)):
        return DEFAULT_PREFIXES
    if not all(valid_topic_level(p, MAX_PREFIX) for p in raw):
        raise DiscoveryError(f"discovery config has unusable prefixes {raw!r:.100}", "name")
    return (raw[0], raw[1], raw[2])


def _full_topic(raw: Mapping[str, Any]) -> str:
    value = raw.get("ft")
    if not isinstance(value, str) or not value:
        return DEFAULT_FULL_TOPIC
    if not valid_name(value, MAX_FULL_TOPIC) or "+" in value or "#" in value:
        raise DiscoveryError(f"discovery config has an unusable FullTopic {value!r:.120}", "name")
    return value


def parse_config(mac: str, raw: Any) -> TasmotaDevice:
    """A device from its ``config`` payload (already JSON-decoded).

    Raises DiscoveryError (kind ``name``) for a MAC, topic, FullTopic or prefix that could
    not safely become a tag or an MQTT filter.
    """
    if not isinstance(raw, Mapping):
        raise DiscoveryError("discovery config is not a JSON object")
    topic = raw.get("t")
    if not isinstance(topic, str) or not topic:
        raise DiscoveryError("discovery config has no topic ('t')")
    if not valid_topic_level(topic):
        raise DiscoveryError(f"discovery config has an unusable topic {topic!r:.100}", "name")
    payload_mac = raw.get("mac")
    device_mac = normal_mac(payload_mac if isinstance(payload_mac, str) and payload_mac else mac)
    if device_mac is None:
        raise DiscoveryError(f"discovery config has no usable MAC ({mac!r:.40})", "name")
    device = TasmotaDevice(
        mac=device_mac,
        name=topic,
        topic=topic,
        full_topic=_full_topic(raw),
        prefixes=_prefixes(raw.get("tp")),
    )
    try:
        device.layout()
    except ValueError as err:
        raise DiscoveryError(str(err)[:200], "name") from None
    friendly = raw.get("fn")
    first_friendly = friendly[0] if isinstance(friendly, list) and friendly else None
    if not (isinstance(first_friendly, str) and valid_name(first_friendly)):
        first_friendly = None
    relay_types = raw.get("rl")
    device.name = _text(raw, "dn") or first_friendly or topic
    device.firmware = _text(raw, "sw")
    device.model = _text(raw, "md")
    device.ip = _text(raw, "ip")
    device.hostname = _text(raw, "hn")
    device.online_payload = _text(raw, "onln") or "Online"
    device.offline_payload = _text(raw, "ofln") or "Offline"
    device.relays = (
        sum(1 for r in relay_types[:MAX_NAME] if r) if isinstance(relay_types, list) else 0
    )
    return device


def parse_sensors(raw: Any, limit: int) -> list[str]:
    """Sensor names from the ``sensors`` payload: ``{"sn": <SENSOR payload>, "ver": 1}``;
    at most ``limit`` of them, and only names that may become tags."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sn"), Mapping):
        raise DiscoveryError("discovery sensors payload has no 'sn' object")
    names = [
        key for key, value in raw["sn"].items() if isinstance(value, Mapping) and valid_name(key)
    ]
    return names[:limit]
