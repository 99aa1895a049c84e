"""Reconfigure of a broker kind (Tasmota, TickrMeter) to a broker at another address: the
same entry moves, its unique id (broker address and prefix or request topic) follows, and
it is refused only when another entry already reads the new broker the same way. The
entry's entities keep their ids (they never held the address), the fleet its statistics."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.const import (
    CONF_DISCOVERY_PREFIX,
    CONF_KIND,
    CONF_REQUEST_TOPIC,
    DOMAIN,
    KIND_TASMOTA,
    KIND_TICKRMETER,
)
from tests.mosquitto import Mosquitto

from .conftest import Reloads
from .helpers import broker_entry, publish_plug, until

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture
async def new_broker(tmp_path: Path) -> AsyncGenerator[Mosquitto]:
    """The broker the fleet moved to."""
    (tmp_path / "new").mkdir()
    broker = Mosquitto(tmp_path / "new")
    await broker.start()
    yield broker
    await broker.stop()


def unique_id(kind: str, port: int, data: dict[str, Any]) -> str:
    """The unique id the user step gives an entry for these settings."""
    if kind == KIND_TASMOTA:
        return f"127.0.0.1:{port}/{data[CONF_DISCOVERY_PREFIX]}"
    return f"127.0.0.1:{port}/tickrmeter/{data[CONF_REQUEST_TOPIC]}"


def form(entry: MockConfigEntry, **changes: Any) -> dict[str, Any]:
    """The reconfigure form as shown (the stored settings), with ``changes`` typed in."""
    return {**{k: v for k, v in entry.data.items() if k != CONF_KIND}, **changes}


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry, answer: dict[str, Any]) -> Any:
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    return await hass.config_entries.flow.async_configure(result["flow_id"], answer)


@pytest.mark.parametrize("kind", [KIND_TASMOTA, KIND_TICKRMETER])
async def test_a_fleet_moves_to_a_broker_at_another_address(
    hass: HomeAssistant,
    kind: str,
    mosquitto: Mosquitto,
    new_broker: Mosquitto,
    reloads: Reloads,
    entity_registry: er.EntityRegistry,
) -> None:
    entry = broker_entry(kind, mosquitto)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = {
        e.unique_id for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    reloads.forget()
    await mosquitto.stop()  # the old address answers no more

    result = await reconfigure(hass, entry, form(entry, **{CONF_PORT: new_broker.port}))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_PORT] == new_broker.port
    assert entry.unique_id == unique_id(kind, new_broker.port, dict(entry.data))
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == [entry.entry_id]
    assert entry.state is ConfigEntryState.LOADED
    session = entry.runtime_data.coordinator.session
    assert session.settings["port"] == new_broker.port
    await until(hass, lambda: session.connected)
    now = {e.unique_id for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)}
    assert entities <= now  # the same entities, not a new set beside stale ones
    # The user step, given the new broker, finds this entry: its unique id is the one
    # the user step makes.
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": kind}
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form(entry))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    if kind == KIND_TASMOTA:
        # The devices on the new broker arrive in the same entry.
        await publish_plug(new_broker)
        tracker = entry.runtime_data.coordinator.tracker
        await until(hass, lambda: len(tracker.devices) == 1)
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        (KIND_TASMOTA, {CONF_DISCOVERY_PREFIX: "tasmota/discovery2"}),
        (KIND_TICKRMETER, {CONF_REQUEST_TOPIC: "STOCKPRICEUPDATE2"}),
    ],
)
async def test_a_new_prefix_or_request_topic_on_the_same_broker_moves_the_unique_id(
    hass: HomeAssistant, kind: str, change: dict[str, str], mosquitto: Mosquitto
) -> None:
    entry = broker_entry(kind, mosquitto)
    entry.add_to_hass(hass)
    result = await reconfigure(hass, entry, form(entry, **change))
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == unique_id(kind, mosquitto.port, dict(entry.data))
    assert entry.unique_id.endswith(next(iter(change.values())))
    await hass.async_block_till_done()
    await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize("kind", [KIND_TASMOTA, KIND_TICKRMETER])
async def test_a_broker_another_entry_reads_the_same_way_is_refused(
    hass: HomeAssistant,
    kind: str,
    mosquitto: Mosquitto,
    new_broker: Mosquitto,
    reloads: Reloads,
) -> None:
    entry = broker_entry(kind, mosquitto)
    entry.add_to_hass(hass)
    other = broker_entry(kind, new_broker)
    other.add_to_hass(hass)
    assert other.unique_id != entry.unique_id
    before, before_id = dict(entry.data), entry.unique_id

    result = await reconfigure(hass, entry, form(entry, **{CONF_PORT: new_broker.port}))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "broker_in_use"}
    assert entry.data == before and entry.unique_id == before_id
    assert other.unique_id == unique_id(kind, new_broker.port, dict(other.data))
    assert reloads.reloads == []

    # The same form, sent back to the entry's own broker, still works.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], form(entry, **{CONF_PORT: mosquitto.port})
    )
    assert result["reason"] == "reconfigure_successful"
    assert entry.unique_id == before_id
    await hass.async_block_till_done()
    for loaded in (entry, other):
        await hass.config_entries.async_unload(loaded.entry_id)


async def test_the_two_kinds_on_one_broker_are_not_in_each_others_way(
    hass: HomeAssistant, mosquitto: Mosquitto, new_broker: Mosquitto
) -> None:
    """A TickrMeter fleet moving to the broker a Tasmota entry reads is no conflict."""
    tasmota = broker_entry(KIND_TASMOTA, new_broker)
    tasmota.add_to_hass(hass)
    fleet = broker_entry(KIND_TICKRMETER, mosquitto)
    fleet.add_to_hass(hass)
    result = await reconfigure(hass, fleet, form(fleet, **{CONF_PORT: new_broker.port}))
    assert result["reason"] == "reconfigure_successful"
    assert fleet.unique_id == unique_id(KIND_TICKRMETER, new_broker.port, dict(fleet.data))
    await hass.async_block_till_done()
    for entry in (tasmota, fleet):
        await hass.config_entries.async_unload(entry.entry_id)
