"""Hands a platform's setup to the glue of the entry's kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .opendtu import OpenDtuRuntime

if TYPE_CHECKING:
    from . import FleetMetricsConfigEntry

KindSetup = Callable[[Any, AddConfigEntryEntitiesCallback], Callable[[], None]]


def setup_for_kind(
    entry: FleetMetricsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    opendtu: KindSetup,
    tasmota: KindSetup,
) -> None:
    runtime = entry.runtime_data
    setup = opendtu if isinstance(runtime, OpenDtuRuntime) else tasmota
    entry.async_on_unload(setup(runtime.coordinator, async_add_entities))
