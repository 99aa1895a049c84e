"""The "Host agents" entry's view of the hub: its hosts, their readings, their events.

No polling: the hub calls back when a host comes online, goes offline, or a batch is applied.
Batches update the readings and tell entities at most once a second (``ThrottledNotifier``);
online and offline are rare and change availability, so they are told at once, and fire
``fleet_metrics_host_online`` / ``fleet_metrics_host_offline`` (the hub's grace period has
already kept a quick reconnect from being a transition). A batch's Proxmox transitions
fire ``fleet_metrics_guest_stopped`` / ``fleet_metrics_pool_degraded`` (see ``proxmox``).
The hosts are the entry's subentries: when one is added or removed the entry's update
listener hands the new list to the hub, which cuts a removed host's connection at once. A
host's subentry also holds its guest pick (``guests``: the guest ids shown as devices; none
stored: every guest, up to the cap); a guest taken out of the pick loses its device, and so
does a guest gone from PVE (the host's readings say when a run listed every guest and which).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator

from ..const import (
    CONF_TOKEN_HASH,
    DOMAIN,
    EVENT_HOST_OFFLINE,
    EVENT_HOST_ONLINE,
    LIVE_UPDATE_MIN_INTERVAL,
    SUBENTRY_HOST,
)
from ..core.agent.protocol import Batch
from ..core.sources.agents.hub import HostState
from ..throttle import ThrottledNotifier
from .proxmox import MAX_GUESTS
from .readings import HostReadings
from .server import AgentServer

if TYPE_CHECKING:
    from . import AgentsRuntime

type AgentsConfigEntry = ConfigEntry[AgentsRuntime]

_LOGGER = logging.getLogger(__name__)


CONF_GUESTS: Final = "guests"


def device_identifier(host: str) -> tuple[str, str]:
    return (DOMAIN, f"agent_{host}")


def guest_identifier(host: str, guest_id: str) -> tuple[str, str]:
    """A guest device's identifier; "/" is in no host name, so no host's prefix is
    another's."""
    return (DOMAIN, f"agent_{host}/guest/{guest_id}")


def guest_pick(data: Mapping[str, Any]) -> frozenset[str] | None:
    """The guest ids a host's subentry picks; None: every guest (up to the cap)."""
    picked = data.get(CONF_GUESTS)
    if not picked or not isinstance(picked, list):
        return None
    return frozenset(str(guest) for guest in picked[:MAX_GUESTS])


class AgentsCoordinator(DataUpdateCoordinator[dict[str, HostReadings]]):
    """``data`` maps each registered host to its readings (empty until it reports)."""

    config_entry: AgentsConfigEntry

    def __init__(self, hass: HomeAssistant, entry: AgentsConfigEntry, server: AgentServer) -> None:
        super().__init__(hass, _LOGGER, config_entry=entry, name="Host agents")
        self.server = server
        self.hub = server.hub
        self.data = {}
        self.subentry_ids: dict[str, str] = {}  # host -> its subentry
        self.guest_picks: dict[str, frozenset[str] | None] = {}  # host -> its pick
        self._device_info: dict[str, tuple[str, str]] = {}  # host -> (model, sw_version)
        self._notify = ThrottledNotifier(
            hass, LIVE_UPDATE_MIN_INTERVAL, self.async_update_listeners
        )

    @callback
    def start(self) -> None:
        """Hand the hub its hosts and listen; unloading undoes it in reverse order."""
        entry = self.config_entry
        entry.async_on_unload(self.server.release)
        self.sync_hosts()
        entry.async_on_unload(
            self.hub.subscribe(
                on_online=self._on_online, on_offline=self._on_offline, on_batch=self._on_batch
            )
        )
        # The config entries' own signal, not an update listener: newer HA restricts update
        # listeners, and this entry changes only by its subentries.
        entry.async_on_unload(
            async_dispatcher_connect(self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._entry_changed)
        )
        entry.async_on_unload(self._notify.cancel)

    @callback
    def _entry_changed(self, change: ConfigEntryChange, entry: ConfigEntry) -> None:
        """Subentries added, rotated or removed (all that changes about this entry)."""
        if change is ConfigEntryChange.UPDATED and entry.entry_id == self.config_entry.entry_id:
            self.sync_hosts()

    @callback
    def sync_hosts(self) -> None:
        """Make the hub's hosts those of the subentries (added, removed, rotated)."""
        hosts = {
            subentry.data[CONF_HOST]: subentry
            for subentry in self.config_entry.subentries.values()
            if subentry.subentry_type == SUBENTRY_HOST
        }
        self.subentry_ids = {name: subentry.subentry_id for name, subentry in hosts.items()}
        picks = {name: guest_pick(subentry.data) for name, subentry in hosts.items()}
        for name, pick in picks.items():
            if name in self.guest_picks and self.guest_picks[name] != pick:
                self._remove_unpicked_guests(name, pick)
        self.guest_picks = picks
        for name in [name for name in self.data if name not in hosts]:
            del self.data[name]
            self._device_info.pop(name, None)
        for name in hosts:
            self.data.setdefault(name, HostReadings())
        self.server.set_hosts(
            {name: subentry.data[CONF_TOKEN_HASH] for name, subentry in hosts.items()}
        )
        self.async_update_listeners()

    def shows_guest(self, host: str, guest_id: str) -> bool:
        """Whether ``guest_id`` of ``host`` is a device: picked, or every guest by default."""
        pick = self.guest_picks.get(host)
        return pick is None or guest_id in pick

    @callback
    def _remove_unpicked_guests(self, host: str, pick: frozenset[str] | None) -> None:
        """Guests taken out of the pick, or gone from PVE, lose their device (and with it
        their entities)."""
        if pick is None:
            return  # every guest again: the platforms add what is missing
        registry = dr.async_get(self.hass)
        prefix = guest_identifier(host, "")[1]
        for device in dr.async_entries_for_config_entry(registry, self.config_entry.entry_id):
            for domain, identifier in device.identifiers:
                if domain == DOMAIN and identifier.startswith(prefix):
                    if identifier.removeprefix(prefix) not in pick:
                        registry.async_remove_device(device.id)
                    break

    def online(self, host: str) -> bool:
        state = self.hub.hosts.get(host)
        return state is not None and state.online

    def agent_version(self, host: str) -> str:
        readings = self.data.get(host)
        state = self.hub.hosts.get(host)
        return (state.agent_version if state else "") or (
            readings.agent_version if readings else ""
        )

    @callback
    def _on_online(self, state: HostState) -> None:
        self._transition(state, EVENT_HOST_ONLINE)

    @callback
    def _on_offline(self, state: HostState) -> None:
        self._transition(state, EVENT_HOST_OFFLINE)

    @callback
    def _transition(self, state: HostState, event: str) -> None:
        if state.name not in self.subentry_ids:
            return  # removed: its end is no outage
        self.hass.bus.async_fire(
            event, {"entry_id": self.config_entry.entry_id, "host": state.name}
        )
        self._update_device(state.name)
        self.async_update_listeners()

    @callback
    def _on_batch(self, state: HostState, batch: Batch) -> None:
        readings = self.data.get(state.name)
        if readings is None:
            return
        for event, data in readings.apply(batch.samples):
            self.hass.bus.async_fire(
                event, {"entry_id": self.config_entry.entry_id, "host": state.name, **data}
            )
        proxmox = readings.proxmox
        if proxmox.listed_changed:
            proxmox.listed_changed = False
            self._remove_unpicked_guests(state.name, proxmox.listed_guests)
        self._update_device(state.name)
        self._notify()

    @callback
    def _update_device(self, host: str) -> None:
        """The device shows the host's OS as its model and the agent version as its
        software; both arrive after the device was made (hello, host info samples)."""
        readings = self.data.get(host)
        model = readings.os if readings else ""
        info = (model, self.agent_version(host))
        if self._device_info.get(host) == info:
            return
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={device_identifier(host)})
        if device is None:
            return  # made with the first entity, which reads the same values
        self._device_info[host] = info
        registry.async_update_device(device.id, model=info[0] or None, sw_version=info[1] or None)
