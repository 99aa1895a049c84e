"""Tasmota native discovery: ``tasmota/discovery/<MAC>/config`` and ``/sensors``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


class DiscoveryError(ValueError):
    """A discovery payload we cannot use."""


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


def parse_config(mac: str, raw: Any) -> TasmotaDevice:
    """A device from its ``config`` payload (already JSON-decoded)."""
    if not isinstance(raw, Mapping):
        raise DiscoveryError("discovery config is not a JSON object")
    topic = _text(raw, "t")
    if topic is None:
        raise DiscoveryError("discovery config has no topic ('t')")
    prefixes = raw.get("tp")
    if not (
        isinstance(prefixes, list)
        and len(prefixes) == 3
        and all(isinstance(p, str) for p in prefixes)
    ):
        prefixes = list(DEFAULT_PREFIXES)
    friendly = raw.get("fn")
    first_friendly = friendly[0] if isinstance(friendly, list) and friendly else None
    relay_types = raw.get("rl")
    return TasmotaDevice(
        mac=(_text(raw, "mac") or mac).upper().replace(":", ""),
        name=_text(raw, "dn")
        or (first_friendly if isinstance(first_friendly, str) else None)
        or topic,
        topic=topic,
        full_topic=_text(raw, "ft") or DEFAULT_FULL_TOPIC,
        prefixes=(prefixes[0], prefixes[1], prefixes[2]),
        firmware=_text(raw, "sw"),
        model=_text(raw, "md"),
        ip=_text(raw, "ip"),
        hostname=_text(raw, "hn"),
        online_payload=_text(raw, "onln") or "Online",
        offline_payload=_text(raw, "ofln") or "Offline",
        relays=sum(1 for r in relay_types if r) if isinstance(relay_types, list) else 0,
    )


def parse_sensors(raw: Any) -> list[str]:
    """Sensor names from the ``sensors`` payload: ``{"sn": <SENSOR payload>, "ver": 1}``."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("sn"), Mapping):
        raise DiscoveryError("discovery sensors payload has no 'sn' object")
    return [key for key, value in raw["sn"].items() if isinstance(value, Mapping)]
