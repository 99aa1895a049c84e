"""Hands a platform's setup to the glue of the entry's kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

if TYPE_CHECKING:
    from . import FleetMetricsConfigEntry

KindSetup = Callable[[Any, AddConfigEntryEntitiesCallback], Callable[[], None]]


def setup_for_kind(
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    setups: Mapping[type, KindSetup],
) -> None:
    """``setups`` maps runtime types to their platform setup; other kinds add nothing."""
    runtime = entry.runtime_data
    if setup := setups.get(type(runtime)):
        entry.async_on_unload(setup(runtime.coordinator, async_add_entities))
