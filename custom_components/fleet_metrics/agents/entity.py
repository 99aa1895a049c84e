"""One device per host, one per Proxmox guest behind it; entities available while the host
is online (a guest's also while the host still reports it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..compat import child_device_info, register_device
from .coordinator import AgentsCoordinator, device_identifier, guest_identifier
from .proxmox import Guest, Pool
from .readings import HostReadings

# An entity a host's readings call for: its key (unique per host) and how to build it.
Candidate = tuple[str, Callable[[], Entity]]


def host_device_info(coordinator: AgentsCoordinator, host: str) -> DeviceInfo:
    readings = coordinator.data.get(host)
    return DeviceInfo(
        identifiers={device_identifier(host)},
        name=host,
        manufacturer="Fleet Metrics agent",
        model=(readings.os if readings else "") or None,
        sw_version=coordinator.agent_version(host) or None,
    )


class AgentEntity(CoordinatorEntity[AgentsCoordinator]):
    _attr_has_entity_name = True
    # Set when added by ``add_entities_as_they_appear``: forgets the entity's key once it
    # is removed (its guest left the pick), so that it is added again if it comes back.
    forget: Callable[[], None] | None = None

    def __init__(self, coordinator: AgentsCoordinator, host: str, key: str) -> None:
        super().__init__(coordinator)
        self.host = host
        self._attr_unique_id = f"agent_{host}_{key}"
        self._attr_device_info = host_device_info(coordinator, host)

    async def async_will_remove_from_hass(self) -> None:
        await super().async_will_remove_from_hass()
        if self.forget is not None:
            self.forget()

    @property
    def readings(self) -> HostReadings | None:
        return self.coordinator.data.get(self.host)

    @property
    def available(self) -> bool:
        return super().available and self.coordinator.online(self.host)


class GuestEntity(AgentEntity):
    """A value of one Proxmox guest, on the guest's own device behind its host's."""

    def __init__(self, coordinator: AgentsCoordinator, host: str, guest: Guest, key: str) -> None:
        super().__init__(coordinator, host, key)
        self.guest_id = guest.id
        self._attr_unique_id = f"agent_{host}/guest/{guest.id}/{key}"
        self._attr_device_info = child_device_info(
            device_identifier(host),
            _host_device_id(coordinator, host),
            identifiers={guest_identifier(host, guest.id)},
            name=guest.label,
            manufacturer="Proxmox VE",
            model={"qemu": "Virtual machine", "lxc": "Container"}.get(guest.type) or None,
        )

    @property
    def guest(self) -> Guest | None:
        readings = self.readings
        return readings.proxmox.guests.get(self.guest_id) if readings else None

    @property
    def available(self) -> bool:
        return super().available and self.guest is not None


def pool_of(readings: HostReadings | None, name: str) -> Pool | None:
    """Pool ``name`` while its host reports it, for the pool entities of both platforms."""
    return readings.proxmox.pools.get(name) if readings else None


def _host_device_id(coordinator: AgentsCoordinator, host: str) -> str:
    """The host's device id: made with the host's first entity (its online sensor), made
    here should a guest come first."""
    registry = dr.async_get(coordinator.hass)
    device = registry.async_get_device(identifiers={device_identifier(host)})
    if device is not None:
        return device.id
    return register_device(
        coordinator.hass, coordinator.config_entry, host_device_info(coordinator, host)
    )


def add_entities_as_they_appear(
    coordinator: AgentsCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[AgentsCoordinator, str, HostReadings], Iterable[Candidate]],
) -> Callable[[], None]:
    """Add each host's entities as its readings bring them, under the host's subentry (so
    removing the host removes its device and entities). ``entities_for`` names the entities a
    host's readings call for by key; only the new ones are built."""
    known: dict[str, set[str]] = {}

    @callback
    def add_new() -> None:
        for host in [host for host in known if host not in coordinator.data]:
            del known[host]
        for host, readings in list(coordinator.data.items()):
            subentry_id = coordinator.subentry_ids.get(host)
            if subentry_id is None:
                continue
            seen = known.setdefault(host, set())
            new: list[Entity] = []
            for key, build in entities_for(coordinator, host, readings):
                if key not in seen:
                    seen.add(key)
                    entity = build()
                    if isinstance(entity, AgentEntity):
                        entity.forget = partial(seen.discard, key)
                    new.append(entity)
            if new:
                async_add_entities(new, config_subentry_id=subentry_id)

    add_new()
    return coordinator.async_add_listener(add_new)
