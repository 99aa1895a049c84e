"""Repair issues for lasting problems, raised while they last and gone when they end: a
broker that starts refusing the credentials, for each broker kind (a real Mosquitto whose
password changes under a running entry; retries shortened so each test takes seconds, not
the minute a real entry waits between refused attempts), and a DTU whose firmware lacks
the API (the fake DTU answers 404)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.const import DOMAIN, KIND_TASMOTA, KIND_TICKRMETER
from custom_components.fleet_metrics.repairs import ISSUE_BROKER_AUTH, ISSUE_FIRMWARE, issue_id
from tests.mosquitto import Mosquitto
from tests.opendtu_fake import FakeOpenDtu

from .conftest import Reloads, setup_entry
from .helpers import (
    FLEET,
    broker_entry,
    publish_plug,
    reauth_flows,
    setup,
    state_of,
    until,
)
from .test_sensor import next_poll
from .test_translations import STRINGS


@dataclass
class BrokerEntry:
    """A running entry of one broker kind, and an entity of it that is available (in state
    ``up``) while the broker accepts the entry's credentials."""

    entry: MockConfigEntry
    broker: Mosquitto
    watched: str
    up: str

    async def change_password(self, password: str) -> None:
        """The broker's user gets ``password``: a restart, as an admin's edit would need."""
        await self.broker.stop()
        self.broker.users = {"fleet": password}
        await self.broker.start()


@pytest.fixture(params=[KIND_TASMOTA, KIND_TICKRMETER])
async def broker_entry_running(
    request: pytest.FixtureRequest, hass: HomeAssistant, tmp_path: Path, fast_retries: None
) -> AsyncGenerator[BrokerEntry]:
    """Each broker kind's entry, connected as user "fleet" with password "right"."""
    kind = str(request.param)
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        if kind == KIND_TASMOTA:  # Tasmota's entities come with a device: the plug's online
            await publish_plug(broker, "fleet", "right")
            watched, up = "binary_sensor.nxsm200_01_online", STATE_ON
        else:  # the fleet's sensors exist from the start
            watched, up = f"{FLEET}_devices_online", "0"
        entry = broker_entry(kind, broker, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "right"})
        await setup(hass, entry)
        await until(hass, lambda: entry.runtime_data.coordinator.session.connected)
        await until(hass, lambda: state_of(hass, watched) == up)
        yield BrokerEntry(entry, broker, watched, up)
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_a_broker_refusing_the_credentials_later_is_an_issue_until_it_accepts(
    hass: HomeAssistant, broker_entry_running: BrokerEntry, issue_registry: ir.IssueRegistry
) -> None:
    running = broker_entry_running
    entry = running.entry
    key = issue_id(ISSUE_BROKER_AUTH, entry)
    assert issue_registry.async_get_issue(DOMAIN, key) is None
    assert not reauth_flows(hass, entry.entry_id)

    await running.change_password("changed")
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is not None)
    issue = issue_registry.async_get_issue(DOMAIN, key)
    assert issue is not None
    assert issue.translation_key == ISSUE_BROKER_AUTH
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {"title": entry.title}
    assert ISSUE_BROKER_AUTH in STRINGS["issues"]
    assert len(reauth_flows(hass, entry.entry_id)) == 1, "one reauth flow offers the fix"
    assert state_of(hass, running.watched) == STATE_UNAVAILABLE
    # Refused again and again (fast retries): still one issue and one flow.
    refused = entry.runtime_data.coordinator.session
    await until(hass, lambda: refused.outage_started is not None)
    assert len(reauth_flows(hass, entry.entry_id)) == 1

    await running.change_password("right")  # fixed on the broker's side
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is None)
    await until(hass, lambda: state_of(hass, running.watched) == running.up)
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_with_the_new_password_clears_the_issue(
    hass: HomeAssistant,
    broker_entry_running: BrokerEntry,
    issue_registry: ir.IssueRegistry,
    reloads: Reloads,
) -> None:
    running = broker_entry_running
    entry = running.entry
    key = issue_id(ISSUE_BROKER_AUTH, entry)
    await running.change_password("changed")
    await until(hass, lambda: bool(reauth_flows(hass, entry.entry_id)))
    assert issue_registry.async_get_issue(DOMAIN, key) is not None
    reloads.forget()

    (flow,) = reauth_flows(hass, entry.entry_id)
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_USERNAME: "fleet", CONF_PASSWORD: "changed"}
    )
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_PASSWORD] == "changed"
    assert reloads.reloads == [entry.entry_id]
    assert entry.state is ConfigEntryState.LOADED
    await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is None)
    assert not reauth_flows(hass, entry.entry_id)


async def test_a_broker_that_is_only_down_is_no_issue(
    hass: HomeAssistant, broker_entry_running: BrokerEntry, issue_registry: ir.IssueRegistry
) -> None:
    """Only a refusal lasts until the user acts; an outage ends by itself."""
    entry = broker_entry_running.entry
    broker = broker_entry_running.broker
    session = entry.runtime_data.coordinator.session
    await broker.stop()
    await until(hass, lambda: session.outage_started is not None)
    await until(hass, lambda: session.connects == 1 and not session.connected)
    assert issue_registry.async_get_issue(DOMAIN, issue_id(ISSUE_BROKER_AUTH, entry)) is None
    assert not reauth_flows(hass, entry.entry_id)
    await broker.start()
    await until(hass, lambda: session.connected)


async def test_dtu_firmware_without_the_api_is_an_issue_until_an_update_succeeds(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    assert opendtu_entry.state is ConfigEntryState.LOADED
    key = issue_id(ISSUE_FIRMWARE, opendtu_entry)
    assert issue_registry.async_get_issue(DOMAIN, key) is None

    opendtu.failures["/api/livedata/status"] = (404, "Not Found")  # an old firmware
    await next_poll(hass)
    issue = issue_registry.async_get_issue(DOMAIN, key)
    assert issue is not None and issue.translation_key == ISSUE_FIRMWARE
    assert "/api/livedata/status" in (issue.translation_placeholders or {})["error"]

    opendtu.failures.clear()  # updated
    await next_poll(hass)
    assert issue_registry.async_get_issue(DOMAIN, key) is None


async def test_a_garbled_answer_is_not_a_firmware_issue(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Only a missing API lasts; a bad answer is a failed update like any other."""
    await setup_entry(hass, opendtu_entry)
    opendtu.failures["/api/livedata/status"] = (500, "{broken")
    await next_poll(hass)
    assert not opendtu_entry.runtime_data.coordinator.last_update_success
    assert issue_registry.async_get_issue(DOMAIN, issue_id(ISSUE_FIRMWARE, opendtu_entry)) is None


async def test_removing_an_entry_leaves_no_issue_behind(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    opendtu.failures["/api/livedata/status"] = (404, "Not Found")
    await next_poll(hass)
    key = issue_id(ISSUE_FIRMWARE, opendtu_entry)
    assert issue_registry.async_get_issue(DOMAIN, key) is not None
    await hass.config_entries.async_remove(opendtu_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, key) is None
