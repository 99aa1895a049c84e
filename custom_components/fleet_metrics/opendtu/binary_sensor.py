"""OpenDTU binary sensors: inverter radio reach and production, DTU warnings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..core.sources.opendtu.models import Hints, Inverter
from .coordinator import OpenDtuCoordinator
from .entity import OpenDtuEntity, OpenDtuInverterEntity, add_inverter_entities_as_they_appear


@dataclass(frozen=True, kw_only=True)
class HintDescription(BinarySensorEntityDescription):
    value_fn: Callable[[Hints], bool]


@dataclass(frozen=True, kw_only=True)
class InverterFlagDescription(BinarySensorEntityDescription):
    value_fn: Callable[[Inverter], bool]


def _hint(key: str, value_fn: Callable[[Hints], bool]) -> HintDescription:
    return HintDescription(
        key=key,
        translation_key=key,
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=value_fn,
    )


HINTS: tuple[HintDescription, ...] = (
    _hint("time_not_synchronized", lambda h: h.time_sync),  # the DTU says time_sync=true
    _hint("radio_problem", lambda h: h.radio_problem),
    _hint("default_password", lambda h: h.default_password),
)

INVERTER_FLAGS: tuple[InverterFlagDescription, ...] = (
    InverterFlagDescription(
        key="reachable",
        translation_key="reachable",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda i: i.reachable,
    ),
    InverterFlagDescription(
        key="producing",
        translation_key="producing",
        device_class=BinarySensorDeviceClass.RUNNING,
        value_fn=lambda i: i.producing,
    ),
)


class HintBinarySensor(OpenDtuEntity, BinarySensorEntity):
    entity_description: HintDescription

    @property
    def is_on(self) -> bool:
        return self.entity_description.value_fn(self.coordinator.data.hints)


class InverterBinarySensor(OpenDtuInverterEntity, BinarySensorEntity):
    """Reach and production stay available when the inverter is out of radio reach:
    that is exactly what they report."""

    entity_description: InverterFlagDescription

    def __init__(
        self,
        coordinator: OpenDtuCoordinator,
        inverter: Inverter,
        description: InverterFlagDescription,
    ) -> None:
        super().__init__(coordinator, inverter, description, available_when_unreachable=True)

    @property
    def is_on(self) -> bool | None:
        inverter = self.inverter
        return self.entity_description.value_fn(inverter) if inverter else None


def async_setup_binary_sensors(
    coordinator: OpenDtuCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    async_add_entities(HintBinarySensor(coordinator, description) for description in HINTS)
    return add_inverter_entities_as_they_appear(
        coordinator,
        async_add_entities,
        lambda inverter: [InverterBinarySensor(coordinator, inverter, d) for d in INVERTER_FLAGS],
    )
