"""Routes TickrMeter messages to the correlator and the fleet; counts what it cannot use.

This is the hot path (1,000+ messages per second): one dict lookup on the topic, one JSON
decode, then state updates. Nothing here builds samples; aggregates are read on a tick.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from .correlator import Correlator
from .fleet import Fleet

DEVICE_ID = re.compile(r"[0-9A-Fa-f]{12}")


@dataclass(frozen=True, slots=True)
class Topics:
    request: str = "STOCKPRICEUPDATE"
    status: str = "DEVICESTATUS_RES"
    boots: tuple[str, ...] = ("TICKRMETERBOOT", "DEVICE_BOOTED")
    stream: str = "HTTPSTREAMSTOCKS"

    def filters(self) -> list[str]:
        # Answers arrive on the device's own topic (12 hex characters): "+" and a check.
        return [self.request, self.status, *self.boots, self.stream, "+"]


@dataclass(slots=True)
class MessageCounts:
    received: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)


class FleetTracker:
    def __init__(
        self,
        correlator: Correlator | None = None,
        fleet: Fleet | None = None,
        topics: Topics | None = None,
    ) -> None:
        self.correlator = correlator or Correlator()
        self.fleet = fleet or Fleet()
        self.topics = topics or Topics()
        self.counts = MessageCounts()
        t = self.topics
        self._routes = {t.request: "request", t.status: "status", t.stream: "stream"}
        self._routes.update(dict.fromkeys(t.boots, "boot"))

    @property
    def malformed(self) -> int:
        return sum(self.counts.malformed.values())

    def handle(self, topic: str, payload: bytes) -> None:
        kind = self._routes.get(topic)
        if kind is None:
            if len(topic) != 12 or not DEVICE_ID.fullmatch(topic):
                return  # not ours
            kind = "response"
        self.counts.received[kind] += 1
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self.counts.malformed[kind] += 1
            return
        if not isinstance(body, dict) or not self._apply(kind, topic, body):
            self.counts.malformed[kind] += 1

    def _apply(self, kind: str, topic: str, body: Mapping[str, Any]) -> bool:
        """False when the message lacks what its kind needs."""
        if kind == "response":
            symbol = body.get("symbol")
            if not isinstance(symbol, str) or not symbol:
                return False
            self.correlator.response(topic.upper(), symbol)
            self.fleet.seen(topic.upper())
            return True
        device = body.get("device")
        if not isinstance(device, str) or not DEVICE_ID.fullmatch(device):
            return False
        device = device.upper()
        if kind == "request":
            symbol = body.get("symbol")
            if not isinstance(symbol, str) or not symbol:
                return False
            self.correlator.request(device, symbol)
            self.fleet.seen(device)
        elif kind == "status":
            self.fleet.status(device, body)
        elif kind == "boot":
            self.fleet.boot(device)
        else:
            self.fleet.seen(device)
        return True
