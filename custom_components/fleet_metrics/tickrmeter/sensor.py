"""Fleet sensors, plus four per symbol for the symbols picked in the options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from ..core.sources.tickrmeter.snapshot import FleetSnapshot, SymbolSnapshot
from .coordinator import TickrMeterCoordinator
from .entity import TickrMeterEntity
from .options import symbols_from_options


def _percent(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio * 100, 2)


@dataclass(frozen=True, kw_only=True)
class FleetSensorDescription(SensorEntityDescription):
    value_fn: Callable[[FleetSnapshot], StateType]
    attributes_fn: Callable[[FleetSnapshot], Mapping[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class SymbolSensorDescription(SensorEntityDescription):
    value_fn: Callable[[SymbolSnapshot], StateType]


def _rate(key: str, unit: str) -> dict[str, Any]:
    return {
        "key": key,
        "translation_key": key,
        "native_unit_of_measurement": unit,
        "state_class": SensorStateClass.MEASUREMENT,
        "suggested_display_precision": 1,
    }


def _latency(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "translation_key": key,
        "device_class": SensorDeviceClass.DURATION,
        "native_unit_of_measurement": UnitOfTime.SECONDS,
        "suggested_unit_of_measurement": UnitOfTime.MILLISECONDS,
        "suggested_display_precision": 0,
        "state_class": SensorStateClass.MEASUREMENT,
    }


COUNT: dict[str, Any] = {"state_class": SensorStateClass.MEASUREMENT}
RATIO: dict[str, Any] = {
    "native_unit_of_measurement": PERCENTAGE,
    "state_class": SensorStateClass.MEASUREMENT,
    "suggested_display_precision": 1,
}


def _ranking(snapshot: FleetSnapshot) -> Mapping[str, Any]:
    return {
        "ranking": [
            {"symbol": symbol, "p95_latency_ms": round(p95 * 1000, 1)}
            for symbol, p95 in snapshot.slowest
        ]
    }


FLEET_SENSORS: tuple[FleetSensorDescription, ...] = (
    FleetSensorDescription(
        key="devices_online", translation_key="devices_online", **COUNT,
        value_fn=lambda s: s.fleet.online,
    ),
    FleetSensorDescription(
        key="devices_known", translation_key="devices_known", **COUNT,
        value_fn=lambda s: s.fleet.devices,
    ),
    FleetSensorDescription(
        **_rate("requests_per_minute", "requests/min"), value_fn=lambda s: s.rates.requests
    ),
    FleetSensorDescription(
        **_rate("responses_per_minute", "responses/min"),
        value_fn=lambda s: s.rates.responses,
    ),
    FleetSensorDescription(
        **_rate("timeouts_per_minute", "timeouts/min"), value_fn=lambda s: s.rates.timeouts
    ),
    FleetSensorDescription(
        key="response_ratio", translation_key="response_ratio", **RATIO,
        value_fn=lambda s: _percent(s.rates.response_ratio),
    ),
    FleetSensorDescription(**_latency("latency_p95"), value_fn=lambda s: s.latency.p95),
    FleetSensorDescription(
        **_latency("latency_average"), value_fn=lambda s: s.latency.average
    ),
    FleetSensorDescription(
        key="slowest_symbol", translation_key="slowest_symbol",
        value_fn=lambda s: s.slowest[0][0] if s.slowest else None,
        attributes_fn=_ranking,
    ),
    FleetSensorDescription(
        key="low_battery_devices", translation_key="low_battery_devices", **COUNT,
        value_fn=lambda s: s.fleet.low_battery,
    ),
    FleetSensorDescription(
        key="firmware_versions", translation_key="firmware_versions", **COUNT,
        value_fn=lambda s: len(s.fleet.by_firmware),
        attributes_fn=lambda s: {"devices_by_firmware": dict(sorted(s.fleet.by_firmware.items()))},
    ),
    FleetSensorDescription(
        key="requests_pending", translation_key="requests_pending", **COUNT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.pending,
    ),
    FleetSensorDescription(
        key="malformed_messages", translation_key="malformed_messages",
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.malformed,
    ),
)  # fmt: skip

SYMBOL_SENSORS: tuple[SymbolSensorDescription, ...] = (
    SymbolSensorDescription(
        **_latency("symbol_latency_p95"), value_fn=lambda s: s.latency.p95
    ),
    SymbolSensorDescription(
        key="symbol_response_ratio", translation_key="symbol_response_ratio", **RATIO,
        value_fn=lambda s: _percent(s.rates.response_ratio),
    ),
    SymbolSensorDescription(
        **_rate("symbol_requests_per_minute", "requests/min"),
        value_fn=lambda s: s.rates.requests,
    ),
    SymbolSensorDescription(
        **_rate("symbol_timeouts_per_minute", "timeouts/min"),
        value_fn=lambda s: s.rates.timeouts,
    ),
)  # fmt: skip


class FleetSensor(TickrMeterEntity, SensorEntity):
    entity_description: FleetSensorDescription

    def __init__(
        self, coordinator: TickrMeterCoordinator, description: FleetSensorDescription
    ) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType:
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> Mapping[str, Any] | None:
        attributes = self.entity_description.attributes_fn
        return attributes(self.coordinator.data) if attributes else None


class SymbolSensor(TickrMeterEntity, SensorEntity):
    """Unknown until the symbol has traffic; it may be picked before it is ever seen."""

    entity_description: SymbolSensorDescription

    def __init__(
        self,
        coordinator: TickrMeterCoordinator,
        description: SymbolSensorDescription,
        symbol: str,
    ) -> None:
        super().__init__(coordinator, f"symbol_{symbol}_{description.key}")
        self.entity_description = description
        self._symbol = symbol
        self._attr_translation_placeholders = {"symbol": symbol}

    @property
    def native_value(self) -> StateType:
        state = self.coordinator.data.symbols.get(self._symbol)
        return self.entity_description.value_fn(state) if state else None


def async_setup_sensors(
    coordinator: TickrMeterCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    """The fleet sensors, and the picked symbols' sensors, which follow the options."""
    async_add_entities([FleetSensor(coordinator, d) for d in FLEET_SENSORS])
    shown: dict[str, list[SymbolSensor]] = {}

    @callback
    def show_symbols(symbols: list[str]) -> None:
        """Add the sensors of newly picked symbols; remove (from the registry too) those of
        symbols no longer picked."""
        registry = er.async_get(coordinator.hass)
        for symbol in [s for s in shown if s not in symbols]:
            for entity in shown.pop(symbol):
                if entity.registry_entry is not None:
                    registry.async_remove(entity.entity_id)
        added: list[SensorEntity] = []
        for symbol in symbols:
            if symbol not in shown:
                shown[symbol] = [SymbolSensor(coordinator, d, symbol) for d in SYMBOL_SENSORS]
                added += shown[symbol]
        if added:
            async_add_entities(added)

    show_symbols(symbols_from_options(coordinator.config_entry.options))
    coordinator.show_symbols = show_symbols

    def stop() -> None:
        coordinator.show_symbols = None

    return stop
