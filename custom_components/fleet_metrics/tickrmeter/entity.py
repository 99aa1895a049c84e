"""Every TickrMeter entity belongs to one device: the fleet."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import DOMAIN
from .coordinator import TickrMeterCoordinator


class TickrMeterEntity(CoordinatorEntity[TickrMeterCoordinator]):
    """Unavailable while the broker is unreachable: the numbers would be stale."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: TickrMeterCoordinator, key: str) -> None:
        super().__init__(coordinator)
        entry = coordinator.config_entry
        self._attr_unique_id = f"{entry.entry_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"tickrmeter_{entry.entry_id}")},
            name=entry.title,
            manufacturer="TickrMeter",
            model="Device fleet",
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def available(self) -> bool:
        return super().available and self.coordinator.session.connected
