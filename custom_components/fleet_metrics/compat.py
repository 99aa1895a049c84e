"""Every difference between the Home Assistant versions we run on is decided here, once.

Tests run on HA 2025.4 (the newest on the project's Python); users run 2026.x. Each
difference is picked by looking for the feature itself, not by version number, so a
backport or an early removal still takes the right path. Nothing else in the integration
asks which HA it runs on.

- Reloading after an options change: HA that has ``OptionsFlowWithReload`` reloads the entry
  itself and, from 2026.12, refuses an update listener next to it or next to flows that
  reload (``async_update_reload_and_abort``, ``_abort_if_unique_id_configured(updates=...)``).
  Older HA has no such class: there an update listener reloads, but only when the options
  changed, so the reloading flows still reload exactly once.
- Linking a device to its parent: ``via_device_id`` (a registry device id) where the device
  registry takes it (2026.8, which deprecates ``via_device``), ``via_device`` (the parent's
  identifier) before.
- Registering a device from a ``DeviceInfo``: ``async_get_or_create_from_info`` where it
  exists (``DeviceInfo`` is a dataclass there), keyword arguments before (a ``TypedDict``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry, OptionsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo


def options_flow_reloads(namespace: object) -> bool:
    """Whether HA's options flows can reload the entry themselves."""
    return hasattr(namespace, "OptionsFlowWithReload")


def pick_options_flow(namespace: object) -> type[OptionsFlow]:
    """HA's options flow that reloads the entry, or the plain one where there is none."""
    flow: type[OptionsFlow] = getattr(
        namespace, "OptionsFlowWithReload", getattr(namespace, "OptionsFlow", OptionsFlow)
    )
    return flow


def registry_takes_via_device_id(registry: type) -> bool:
    """Whether the device registry links a device to its parent by device id."""
    create = getattr(registry, "async_get_or_create", None)
    return create is not None and "via_device_id" in inspect.signature(create).parameters


OPTIONS_FLOW_RELOADS: Final = options_flow_reloads(config_entries)
VIA_DEVICE_ID: Final = registry_takes_via_device_id(dr.DeviceRegistry)
CREATE_FROM_INFO: Final = hasattr(dr.DeviceRegistry, "async_get_or_create_from_info")

if TYPE_CHECKING:
    ReloadingOptionsFlow = OptionsFlow
else:
    ReloadingOptionsFlow = pick_options_flow(config_entries)


def reload_on_options_change(entry: ConfigEntry) -> None:
    """Where options flows cannot reload, reload when the options differ from setup's.

    Comparing with the options the entry was set up with keeps the listener out of the
    way of flows that change only data and reload by themselves (reauth, reconfigure, a
    device found at a new address): each of them reloads once, not twice.
    """
    if OPTIONS_FLOW_RELOADS:
        return
    at_setup = dict(entry.options)

    async def reload_if_options_changed(hass: HomeAssistant, changed: ConfigEntry) -> None:
        if dict(changed.options) != at_setup:
            hass.config_entries.async_schedule_reload(changed.entry_id)

    entry.async_on_unload(entry.add_update_listener(reload_if_options_changed))


def child_device_info(parent: tuple[str, str], parent_device_id: str, **fields: Any) -> DeviceInfo:
    """``DeviceInfo(**fields)`` placed behind its parent: by the parent's registry id where
    HA takes one, else by the parent's identifier."""
    link = {"via_device_id": parent_device_id} if VIA_DEVICE_ID else {"via_device": parent}
    build: Any = DeviceInfo  # a TypedDict before 2026.8, a dataclass after
    info: DeviceInfo = build(**fields, **link)
    return info


def register_device(hass: HomeAssistant, entry: ConfigEntry, info: DeviceInfo) -> str:
    """Create or update the device ``info`` describes; returns its registry id."""
    registry: Any = dr.async_get(hass)
    if CREATE_FROM_INFO:
        device = registry.async_get_or_create_from_info(
            config_entry_id=entry.entry_id, device_info=info
        )
    else:
        fields: Mapping[str, Any] = info
        device = registry.async_get_or_create(config_entry_id=entry.entry_id, **fields)
    device_id: str = device.id
    return device_id
