"""Home Assistant fixtures: a config entry pointing at the real fake OpenDTU."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_PASSWORD, CONF_URL
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

import custom_components.fleet_metrics as integration
import custom_components.fleet_metrics.tasmota as tasmota
import custom_components.fleet_metrics.tickrmeter as tickrmeter
from custom_components.fleet_metrics.const import CONF_KIND, CONF_WEBSOCKET, DOMAIN, KIND_OPENDTU
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.mqtt.session import BrokerSession
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
            CONF_PASSWORD: "s3cret",
        },
        options={CONF_WEBSOCKET: False},
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@dataclass
class Reloads:
    """Entry ids as HA reloads them and as our setup runs; ``forget`` drops what came before."""

    reloads: list[str] = field(default_factory=list)
    setups: list[str] = field(default_factory=list)

    def forget(self) -> None:
        self.reloads.clear()
        self.setups.clear()


@pytest.fixture
def reloads(hass: HomeAssistant) -> Generator[Reloads]:
    """Counts ``async_reload`` (where every reload path ends) and our ``async_setup_entry``."""
    counts = Reloads()
    reload = hass.config_entries.async_reload
    setup = integration.async_setup_entry

    async def counting_reload(entry_id: str) -> bool:
        counts.reloads.append(entry_id)
        return await reload(entry_id)

    async def counting_setup(hass: HomeAssistant, entry: ConfigEntry) -> bool:
        counts.setups.append(entry.entry_id)
        return await setup(hass, entry)

    with (
        patch.object(hass.config_entries, "async_reload", counting_reload),
        patch.object(integration, "async_setup_entry", counting_setup),
    ):
        yield counts


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Broker sessions retry within a second, refused or not (a real one waits a minute)."""

    def session(name: str, settings: Mapping[str, Any]) -> BrokerSession:
        fast = {"initial": 0.2, "maximum": 0.5}
        return BrokerSession(name, settings, backoff=Backoff(**fast), auth_backoff=Backoff(**fast))

    monkeypatch.setattr(tasmota, "BrokerSession", session)
    monkeypatch.setattr(tickrmeter, "BrokerSession", session)
