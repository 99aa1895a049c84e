"""Home Assistant fixtures: a config entry pointing at the real fake OpenDTU."""

from __future__ import annotations

from collections.abc import Generator
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.fleet_metrics.const import CONF_KIND, CONF_WEBSOCKET, DOMAIN, KIND_OPENDTU
from tests.opendtu_fake import FakeOpenDtu

DTU_UNIQUE_ID = "34:85:18:a1:b2:c3"


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots through HA's serializer, which masks ids and timestamps."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create the entities that are disabled by default too (as HA core's fixture does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


@pytest.fixture
def opendtu_entry(opendtu: FakeOpenDtu) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title="OpenDTU-Buero",
        unique_id=DTU_UNIQUE_ID,
        data={
            CONF_KIND: KIND_OPENDTU,
            CONF_URL: opendtu.url,
            CONF_USERNAME: "admin",
            CONF_PASSWORD: "s3cret",
        },
        options={CONF_WEBSOCKET: False},
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
