"""TickrMeter as a runner source: a shared broker session in, aggregates out on a tick.

The schema refuses what would only fail later or never work: an empty or wildcard topic
(each topic is a routing key, so it must be a plain topic name), one topic for two kinds of
message, a status field table naming an attribute no device has, and booleans or strings
where numbers go. Every error names its key (the runner prints the path) in our own words.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import voluptuous as vol

from ...mqtt.session import BrokerSession
from ...rejects import Rejects
from ...source import Emit, Source, SourceContext
from ...stats.windowed import WindowedLatency
from ...validators import integer, number, positive_seconds
from .correlator import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_SYMBOLS,
    DEFAULT_REQUEST_TIMEOUT,
    Correlator,
)
from .fleet import (
    DEFAULT_DEVICE_TIMEOUT,
    DEFAULT_FORGET_AFTER,
    DEFAULT_MAX_DEVICES,
    DEFAULT_MAX_LABEL_VALUES,
    DEFAULT_STATUS_FIELDS,
    DEVICE_FIELDS,
    Fleet,
)
from .samples import HELP, tick_samples
from .tracker import DEFAULT_MAX_PAYLOAD, FleetTracker, Topics

_TOPIC_DEFAULTS = Topics()
MAX_TOPIC_BYTES = 65_535  # MQTT's limit for a topic name


def plain_topic(value: Any) -> str:
    """A topic name a device publishes to: no wildcard, not empty."""
    if not isinstance(value, str) or not value:
        raise vol.Invalid("expected a topic name such as STOCKPRICEUPDATE")
    if "+" in value or "#" in value:
        raise vol.Invalid(f"{value!r} holds a wildcard (+ or #); a plain topic is needed here")
    if "\x00" in value or len(value.encode()) > MAX_TOPIC_BYTES:
        raise vol.Invalid("not a valid MQTT topic name (NUL, or longer than 65,535 bytes)")
    return value


def boot_topics(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of topic names")
    topics = []
    for index, topic in enumerate(value):
        try:
            topics.append(plain_topic(topic))
        except vol.Invalid as err:
            raise vol.Invalid(err.msg, path=[index]) from err
    return topics


def distinct_topics(value: dict[str, Any]) -> dict[str, Any]:
    """A topic routes to one kind of message only."""
    seen: set[str] = set()
    for topic in (value["request"], value["status"], *value["boots"], value["stream"]):
        if topic in seen:
            raise vol.Invalid(f"{topic!r} is used for two kinds of message")
        seen.add(topic)
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {value!r}")
    return value


def status_fields(value: Any) -> dict[str, str]:
    """Status payload key -> device attribute; every attribute must be one a device has."""
    if not isinstance(value, dict):
        raise vol.Invalid("expected a table of payload key = device field")
    expected = ", ".join(sorted(DEVICE_FIELDS))
    for key, attribute in value.items():
        if not isinstance(key, str) or not key:
            raise vol.Invalid("a payload key must be a non-empty string")
        if not isinstance(attribute, str) or attribute not in DEVICE_FIELDS:
            raise vol.Invalid(f"unknown device field {attribute!r}; expected one of {expected}",
                              path=[key])  # fmt: skip
    return dict(value)


SCHEMA: dict[Any, Any] = {
    vol.Required("broker"): str,
    vol.Optional("tick", default=10.0): positive_seconds,
    vol.Optional("request_timeout", default=DEFAULT_REQUEST_TIMEOUT): positive_seconds,
    vol.Optional("device_timeout", default=DEFAULT_DEVICE_TIMEOUT): positive_seconds,
    vol.Optional("forget_after", default=DEFAULT_FORGET_AFTER): number(1),
    vol.Optional("window", default=300.0): positive_seconds,
    vol.Optional("top", default=5): integer(1, 100),
    vol.Optional("max_pending", default=DEFAULT_MAX_PENDING): integer(1),
    vol.Optional("max_symbols", default=DEFAULT_MAX_SYMBOLS): integer(1),
    vol.Optional("max_devices", default=DEFAULT_MAX_DEVICES): integer(1),
    vol.Optional("max_label_values", default=DEFAULT_MAX_LABEL_VALUES): integer(2, 10_000),
    vol.Optional("max_payload", default=DEFAULT_MAX_PAYLOAD): integer(256),
    vol.Optional("low_battery", default=20.0): number(0, 100),
    vol.Optional("per_device", default=False): flag,
    vol.Optional("status_fields", default=dict(DEFAULT_STATUS_FIELDS)): status_fields,
    vol.Optional("topics", default={}): vol.All(
        {
            vol.Optional("request", default=_TOPIC_DEFAULTS.request): plain_topic,
            vol.Optional("status", default=_TOPIC_DEFAULTS.status): plain_topic,
            vol.Optional("boots", default=list(_TOPIC_DEFAULTS.boots)): boot_topics,
            vol.Optional("stream", default=_TOPIC_DEFAULTS.stream): plain_topic,
        },
        distinct_topics,
    ),
}


def build_tracker(config: Any, rejects: Rejects | None = None) -> FleetTracker:
    window = config["window"]
    topics = config["topics"]
    return FleetTracker(
        Correlator(
            request_timeout=config["request_timeout"],
            max_pending=config["max_pending"],
            latency_factory=lambda: WindowedLatency(window=window),
            max_symbols=config["max_symbols"],
        ),
        Fleet(
            device_timeout=config["device_timeout"],
            forget_after=config["forget_after"],
            status_fields=config["status_fields"],
            low_battery=config["low_battery"],
            max_devices=config["max_devices"],
            max_label_values=config["max_label_values"],
        ),
        Topics(topics["request"], topics["status"], tuple(topics["boots"]), topics["stream"]),
        rejects,
        config["max_payload"],
    )


class TickrMeterSource(Source):
    kind = "tickrmeter"
    HELP: ClassVar[dict[str, str]] = HELP

    def __init__(self, name: str, config: Any, context: SourceContext | None = None) -> None:
        super().__init__(name, config, context)
        self.session: BrokerSession = self.context.broker(config["broker"])
        self.tracker = build_tracker(config, self.rejects)

    async def run(self, emit: Emit) -> None:
        tracker = self.tracker
        handler = self.rejects.guard(tracker.handle)
        undo = [self.session.subscribe(f, handler) for f in tracker.topics.filters()]
        previous_tick = time.monotonic()
        try:
            while True:
                await asyncio.sleep(self.config["tick"])
                tracker.correlator.sweep()
                tracker.fleet.forget_stale()
                samples = tick_samples(
                    tracker, self.config["top"], self.config["per_device"], previous_tick
                )
                previous_tick = time.monotonic()
                for sample in samples:
                    emit(sample)
                self.stats.emitted(len(samples))
                self.stats.messages = sum(tracker.counts.received.values())
                self.stats.parse_errors = self.rejects.total
        finally:
            for unsubscribe in undo:
                unsubscribe()
