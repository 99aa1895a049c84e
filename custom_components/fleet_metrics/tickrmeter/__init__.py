"""TickrMeter glue: a broker session feeding the core tracker, summarised on an interval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from ..broker import async_check_broker, broker_settings
from ..const import (
    CONF_BOOT_TOPICS,
    CONF_P95_LATENCY,
    CONF_REQUEST_TOPIC,
    CONF_STATUS_TOPIC,
    CONF_STREAM_TOPIC,
    CONF_TIMEOUT_RATIO,
    CONF_UPDATE_INTERVAL,
    DEFAULT_P95_LATENCY,
    DEFAULT_TICKRMETER_UPDATE_INTERVAL,
    DEFAULT_TIMEOUT_RATIO_PERCENT,
)
from ..core.mqtt.session import BrokerSession
from ..core.rejects import Rejects
from ..core.sources.tickrmeter.health import SymbolHealth, Thresholds
from ..core.sources.tickrmeter.snapshot import SnapshotTaker
from ..core.sources.tickrmeter.tracker import FleetTracker, Topics
from .coordinator import TickrMeterCoordinator


@dataclass(slots=True)
class TickrMeterRuntime:
    coordinator: TickrMeterCoordinator


def split_topics(text: str) -> tuple[str, ...]:
    return tuple(topic.strip() for topic in text.split(",") if topic.strip())


def topics_from_data(data: Mapping[str, Any]) -> Topics:
    defaults = Topics()
    return Topics(
        request=data.get(CONF_REQUEST_TOPIC) or defaults.request,
        status=data.get(CONF_STATUS_TOPIC) or defaults.status,
        boots=split_topics(data.get(CONF_BOOT_TOPICS, "")) or defaults.boots,
        stream=data.get(CONF_STREAM_TOPIC) or defaults.stream,
    )


def thresholds_from_options(options: Mapping[str, Any]) -> Thresholds:
    return Thresholds(
        timeout_ratio=options.get(CONF_TIMEOUT_RATIO, DEFAULT_TIMEOUT_RATIO_PERCENT) / 100,
        p95_seconds=options.get(CONF_P95_LATENCY, DEFAULT_P95_LATENCY),
    )


async def async_setup_tickrmeter(hass: HomeAssistant, entry: ConfigEntry) -> TickrMeterRuntime:
    settings = broker_settings(dict(entry.data))
    await async_check_broker(settings)
    tracker = FleetTracker(topics=topics_from_data(entry.data), rejects=Rejects(entry.title))
    coordinator = TickrMeterCoordinator(
        hass,
        entry,
        BrokerSession(entry.title, settings),
        SnapshotTaker(tracker),
        SymbolHealth(thresholds_from_options(entry.options)),
        entry.options.get(CONF_UPDATE_INTERVAL, DEFAULT_TICKRMETER_UPDATE_INTERVAL),
    )
    coordinator.start()
    await coordinator.async_config_entry_first_refresh()
    return TickrMeterRuntime(coordinator)
