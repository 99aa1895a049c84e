"""TickrMeter as a runner source: a shared broker session in, aggregates out on a tick."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import voluptuous as vol

from ...mqtt.session import BrokerSession
from ...source import Emit, Source, SourceContext
from ...stats.windowed import WindowedLatency
from ...validators import positive_seconds
from .correlator import DEFAULT_MAX_PENDING, DEFAULT_REQUEST_TIMEOUT, Correlator
from .fleet import DEFAULT_DEVICE_TIMEOUT, DEFAULT_FORGET_AFTER, DEFAULT_STATUS_FIELDS, Fleet
from .samples import HELP, tick_samples
from .tracker import FleetTracker, Topics

_TOPIC_DEFAULTS = Topics()

SCHEMA: dict[Any, Any] = {
    vol.Required("broker"): str,
    vol.Optional("tick", default=10.0): positive_seconds,
    vol.Optional("request_timeout", default=DEFAULT_REQUEST_TIMEOUT): positive_seconds,
    vol.Optional("device_timeout", default=DEFAULT_DEVICE_TIMEOUT): positive_seconds,
    vol.Optional("forget_after", default=DEFAULT_FORGET_AFTER): vol.All(
        vol.Coerce(float), vol.Range(min=1)
    ),
    vol.Optional("window", default=300.0): positive_seconds,
    vol.Optional("top", default=5): vol.All(int, vol.Range(min=1, max=100)),
    vol.Optional("max_pending", default=DEFAULT_MAX_PENDING): vol.All(int, vol.Range(min=1)),
    vol.Optional("low_battery", default=20.0): vol.All(vol.Coerce(float), vol.Range(0, 100)),
    vol.Optional("per_device", default=False): bool,
    vol.Optional("status_fields", default=dict(DEFAULT_STATUS_FIELDS)): {str: str},
    vol.Optional("topics", default={}): {
        vol.Optional("request", default=_TOPIC_DEFAULTS.request): str,
        vol.Optional("status", default=_TOPIC_DEFAULTS.status): str,
        vol.Optional("boots", default=list(_TOPIC_DEFAULTS.boots)): [str],
        vol.Optional("stream", default=_TOPIC_DEFAULTS.stream): str,
    },
}


def build_tracker(config: Any) -> FleetTracker:
    window = config["window"]
    topics = config["topics"]
    return FleetTracker(
        Correlator(
            request_timeout=config["request_timeout"],
            max_pending=config["max_pending"],
            latency_factory=lambda: WindowedLatency(window=window),
        ),
        Fleet(
            device_timeout=config["device_timeout"],
            forget_after=config["forget_after"],
            status_fields=config["status_fields"],
            low_battery=config["low_battery"],
        ),
        Topics(topics["request"], topics["status"], tuple(topics["boots"]), topics["stream"]),
    )


class TickrMeterSource(Source):
    kind = "tickrmeter"
    HELP: ClassVar[dict[str, str]] = HELP

    def __init__(self, name: str, config: Any, context: SourceContext | None = None) -> None:
        super().__init__(name, config, context)
        self.session: BrokerSession = self.context.broker(config["broker"])
        self.tracker = build_tracker(config)

    async def run(self, emit: Emit) -> None:
        tracker = self.tracker
        undo = [self.session.subscribe(f, tracker.handle) for f in tracker.topics.filters()]
        try:
            while True:
                await asyncio.sleep(self.config["tick"])
                tracker.correlator.sweep()
                tracker.fleet.forget_stale()
                samples = tick_samples(tracker, self.config["top"], self.config["per_device"])
                for sample in samples:
                    emit(sample)
                self.stats.emitted(len(samples))
                self.stats.messages = sum(tracker.counts.received.values())
                self.stats.parse_errors = tracker.malformed
        finally:
            for unsubscribe in undo:
                unsubscribe()
