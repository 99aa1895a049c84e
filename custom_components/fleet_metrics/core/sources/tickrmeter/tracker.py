"""Routes TickrMeter messages to the correlator and the fleet; counts what it cannot use.

This is the hot path (1,000+ messages per second): one dict lookup on the topic, one JSON
decode, then state updates. Nothing here builds samples; aggregates are read on a tick.

Whatever arrives is untrusted. A message that cannot be used is counted twice: under its
message kind in ``counts.malformed`` (what Home Assistant and the ``tickrmeter_messages``
series show) and under the reason in ``rejects`` (shared with the runner, which logs it
sparingly and dead-letters it). Any exception a payload provokes is such a rejection; the
handler never raises. A symbol is checked (``names.valid_symbol``) only the first time it is
seen: symbols already tracked were checked when they arrived.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...rejects import Rejects
from .correlator import Correlator
from .fleet import Fleet
from .names import valid_symbol

DEVICE_ID = re.compile(r"[0-9A-Fa-f]{12}")
# Real messages are a few hundred bytes; a status with every field is under 1 kB.
DEFAULT_MAX_PAYLOAD = 16 * 1024

# (rejection kind, reason) of each way a message can be unusable.
Problem = tuple[str, str]
NOT_AN_OBJECT: Problem = ("shape", "the payload is not a JSON object")
NO_SYMBOL: Problem = ("shape", "no symbol (a non-empty string)")
BAD_SYMBOL: Problem = ("name", "the symbol is too long or has characters no ticker has")
NO_DEVICE: Problem = ("shape", "no device id (a string)")
BAD_DEVICE: Problem = ("name", "the device id is not 12 hexadecimal digits")


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
        rejects: Rejects | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.correlator = correlator or Correlator()
        self.fleet = fleet or Fleet()
        self.topics = topics or Topics()
        self.rejects = rejects or Rejects("tickrmeter")
        self.max_payload = max_payload
        self.counts = MessageCounts()
        t = self.topics
        self._routes = {t.request: "request", t.status: "status", t.stream: "stream"}
        self._routes.update(dict.fromkeys(t.boots, "boot"))

    @property
    def malformed(self) -> int:
        return sum(self.counts.malformed.values())

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one message; never raises."""
        kind = self._routes.get(topic)
        if kind is None:
            if len(topic) != 12 or not DEVICE_ID.fullmatch(topic):
                return  # not ours
            kind = "response"
        self.counts.received[kind] += 1
        if len(payload) > self.max_payload:
            problem: Problem | None = ("too_large", f"{len(payload)} bytes")
        else:
            try:
                body = orjson.loads(payload)
                problem = self._apply(kind, topic, body) if type(body) is dict else NOT_AN_OBJECT
            except orjson.JSONDecodeError as err:
                problem = ("json", str(err))
            except Exception as err:  # whatever else a payload provokes: count, carry on
                problem = ("exception", f"{type(err).__name__}: {err}")
        if problem is not None:
            self.counts.malformed[kind] += 1
            self.rejects.reject(problem[0], f"{kind}: {problem[1]}"[:500], topic, payload)

    def _apply(self, kind: str, topic: str, body: Mapping[str, Any]) -> Problem | None:
        """None when applied; else what the message lacks for its kind."""
        if kind == "response":
            symbol = body.get("symbol")
            if type(symbol) is not str or not symbol:
                return NO_SYMBOL
            if symbol not in self.correlator.symbols and not valid_symbol(symbol):
                return BAD_SYMBOL
            answered = topic.upper()
            self.correlator.response(answered, symbol)
            self.fleet.seen(answered)
            return None
        raw = body.get("device")
        if type(raw) is not str:
            return NO_DEVICE
        if len(raw) != 12 or not DEVICE_ID.fullmatch(raw):
            return BAD_DEVICE
        device = raw.upper()
        if kind == "request":
            symbol = body.get("symbol")
            if type(symbol) is not str or not symbol:
                return NO_SYMBOL
            if symbol not in self.correlator.symbols and not valid_symbol(symbol):
                return BAD_SYMBOL
            self.correlator.request(device, symbol)
            self.fleet.seen(device)
        elif kind == "status":
            if (refused := self.fleet.status(device, body)) is not None:
                return ("name", f"status field {refused[:40]!r} cannot be a label")
        elif kind == "boot":
            self.fleet.boot(device)
        else:
            self.fleet.seen(device)
        return None
