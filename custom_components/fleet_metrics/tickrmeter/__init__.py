"""TickrMeter glue: a broker session feeding the core tracker, summarised on an interval;
its statistics kept across options changes (applied in place) and restarts (``store``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from ..broker import async_broker_settings, async_check_broker
from ..const import CONF_BOOT_TOPICS, CONF_REQUEST_TOPIC, CONF_STATUS_TOPIC, CONF_STREAM_TOPIC
from ..core.mqtt.session import BrokerSession
from ..core.rejects import Rejects
from ..core.sources.tickrmeter.health import SymbolHealth
from ..core.sources.tickrmeter.snapshot import SnapshotTaker
from ..core.sources.tickrmeter.tracker import FleetTracker, Topics
from .coordinator import TickrMeterCoordinator
from .options import interval_from_options, thresholds_from_options
from .store import FleetStore


@dataclass(slots=True)
class TickrMeterRuntime:
    coordinator: TickrMeterCoordinator
    store: FleetStore


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


async def async_setup_tickrmeter(hass: HomeAssistant, entry: ConfigEntry) -> TickrMeterRuntime:
    """The saved statistics go into the tracker before the first message arrives."""
    settings = await async_broker_settings(hass, dict(entry.data))
    await async_check_broker(settings)
    tracker = FleetTracker(topics=topics_from_data(entry.data), rejects=Rejects(entry.title))
    health = SymbolHealth(thresholds_from_options(entry.options))
    store = FleetStore(hass, entry, tracker, health)
    await store.async_restore()
    coordinator = TickrMeterCoordinator(
        hass,
        entry,
        BrokerSession(entry.title, settings),
        SnapshotTaker(tracker),
        health,
        interval_from_options(entry.options),
    )
    coordinator.start()
    store.start()
    # Saved when the entry unloads: a reload, a reconfigure, a removal (which then deletes it).
    entry.async_on_unload(store.async_save)
    await coordinator.async_config_entry_first_refresh()
    return TickrMeterRuntime(coordinator, store)


async def async_remove_tickrmeter(hass: HomeAssistant, entry: ConfigEntry) -> None:
    await FleetStore.async_remove(hass, entry)
