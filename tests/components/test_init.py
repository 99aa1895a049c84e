from __future__ import annotations

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics import async_remove_config_entry_device
from custom_components.fleet_metrics.const import DOMAIN
from tests.opendtu_fake import FakeOpenDtu

from .conftest import DTU_UNIQUE_ID, setup_entry


async def test_setup_and_unload(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.LOADED
    dtu = device_registry.async_get_device(identifiers={(DOMAIN, DTU_UNIQUE_ID)})
    assert dtu is not None
    assert dtu.manufacturer == "OpenDTU"
    assert dtu.sw_version == "v26.3.30"
    assert dtu.model == "ESP32-S3"
    assert (dr.CONNECTION_NETWORK_MAC, DTU_UNIQUE_ID) in dtu.connections
    inverter = device_registry.async_get_device(
        identifiers={(DOMAIN, "opendtu_inverter_114182345678")}
    )
    assert inverter is not None
    assert inverter.via_device_id == dtu.id
    assert inverter.serial_number == "114182345678"
    assert inverter.name == "HM800"

    assert await hass.config_entries.async_unload(opendtu_entry.entry_id)
    assert opendtu_entry.state is ConfigEntryState.NOT_LOADED


async def test_unreachable_dtu_retries_setup(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    opendtu.failures["/api/system/status"] = (500, '{"message":"boom"}')
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.SETUP_RETRY


async def test_refused_credentials_start_reauth(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    opendtu.password = "changed"
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def test_an_inverter_the_dtu_no_longer_lists_can_be_removed(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    dtu = device_registry.async_get_device(identifiers={(DOMAIN, DTU_UNIQUE_ID)})
    listed = device_registry.async_get_device(
        identifiers={(DOMAIN, "opendtu_inverter_114182345678")}
    )
    gone = device_registry.async_get_or_create(
        config_entry_id=opendtu_entry.entry_id,
        identifiers={(DOMAIN, "opendtu_inverter_999999999999")},
        via_device=(DOMAIN, DTU_UNIQUE_ID),
    )
    assert dtu is not None and listed is not None
    assert await async_remove_config_entry_device(hass, opendtu_entry, gone)
    assert not await async_remove_config_entry_device(hass, opendtu_entry, listed)
    assert not await async_remove_config_entry_device(hass, opendtu_entry, dtu)
