"""Base entities: one for the DTU itself, one for each inverter behind it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import CONNECTION_NETWORK_MAC, DeviceInfo, format_mac
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..compat import child_device_info, register_device
from ..const import DOMAIN
from ..core.sources.opendtu.models import Inverter
from .coordinator import OpenDtuCoordinator


def inverter_identifier(serial: str) -> tuple[str, str]:
    return (DOMAIN, f"opendtu_inverter_{serial}")


def dtu_identifier(coordinator: OpenDtuCoordinator) -> tuple[str, str]:
    return (DOMAIN, str(coordinator.config_entry.unique_id))


def dtu_device_info(coordinator: OpenDtuCoordinator) -> DeviceInfo:
    """The DTU itself. Its MAC is a connection of this device only: since HA 2026.8 it no
    longer merges with a router's or another integration's device of the same MAC."""
    entry = coordinator.config_entry
    system = coordinator.data.system
    network = coordinator.data.network
    return DeviceInfo(
        identifiers={dtu_identifier(coordinator)},
        connections=(
            {(CONNECTION_NETWORK_MAC, format_mac(network.mac))}
            if network and network.mac
            else set()
        ),
        name=system.hostname or entry.title,
        manufacturer="OpenDTU",
        model=system.chip_model,
        sw_version=system.firmware,
        configuration_url=entry.data[CONF_URL],
    )


@callback
def async_register_dtu(hass: HomeAssistant, coordinator: OpenDtuCoordinator) -> None:
    """Register the DTU before any entity, so inverters can name it as their parent by id."""
    coordinator.dtu_device_id = register_device(
        hass, coordinator.config_entry, dtu_device_info(coordinator)
    )


class OpenDtuEntity(CoordinatorEntity[OpenDtuCoordinator]):
    _attr_has_entity_name = True

    def __init__(self, coordinator: OpenDtuCoordinator, description: EntityDescription) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        self._attr_unique_id = f"{entry.unique_id}_{description.key}"
        self._attr_device_info = dtu_device_info(coordinator)


class OpenDtuInverterEntity(CoordinatorEntity[OpenDtuCoordinator]):
    """An inverter value; unavailable while the DTU cannot reach the inverter by radio,
    unless the description says the value stays true (energy totals, limits)."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: OpenDtuCoordinator,
        inverter: Inverter,
        description: EntityDescription,
        available_when_unreachable: bool = False,
    ) -> None:
        super().__init__(coordinator)
        self.entity_description = description
        self.serial = inverter.serial
        self._available_when_unreachable = available_when_unreachable
        self._attr_unique_id = f"opendtu_{inverter.serial}_{description.key}"
        self._attr_device_info = child_device_info(
            dtu_identifier(coordinator),
            coordinator.dtu_device_id,
            identifiers={inverter_identifier(inverter.serial)},
            name=inverter.name,
            manufacturer="Hoymiles",
            serial_number=inverter.serial,
        )

    @property
    def inverter(self) -> Inverter | None:
        return self.coordinator.data.inverters.get(self.serial)

    @property
    def available(self) -> bool:
        inverter = self.inverter
        if not super().available or inverter is None:
            return False
        return inverter.reachable or self._available_when_unreachable


def add_inverter_entities_as_they_appear(
    coordinator: OpenDtuCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[Inverter], Iterable[Entity]],
) -> Callable[[], None]:
    """Add the entities of every inverter now, and of each inverter the DTU reports later."""
    known: set[str] = set()

    @callback
    def add_new() -> None:
        for serial, inverter in coordinator.data.inverters.items():
            if serial not in known:
                known.add(serial)
                async_add_entities(entities_for(inverter))

    add_new()
    return coordinator.async_add_listener(add_new)
