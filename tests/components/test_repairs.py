"""Repair issues for lasting problems, raised while they last and gone when they end: a
broker that starts refusing the credentials (real Mosquitto, whose users change under a
running entry) and a DTU whose firmware lacks the API (the fake DTU answers 404)."""

from __future__ import annotations

from pathlib import Path

from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.const import DOMAIN
from custom_components.fleet_metrics.repairs import ISSUE_BROKER_AUTH, ISSUE_FIRMWARE, issue_id
from tests.components.test_tasmota import until
from tests.mosquitto import Mosquitto
from tests.opendtu_fake import FakeOpenDtu

from .conftest import setup_entry
from .test_sensor import next_poll
from .test_tickrmeter import entry_for, setup


def reauth_flows(hass: HomeAssistant, entry_id: str) -> list[object]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH and flow["context"]["entry_id"] == entry_id
    ]


async def test_a_broker_refusing_the_credentials_later_is_an_issue_until_it_accepts(
    hass: HomeAssistant, tmp_path: Path, issue_registry: ir.IssueRegistry
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        entry = entry_for(broker)
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_USERNAME: "fleet", CONF_PASSWORD: "right"}
        )
        await setup(hass, entry)
        session = entry.runtime_data.coordinator.session
        await until(hass, lambda: session.connected)
        key = issue_id(ISSUE_BROKER_AUTH, entry)
        assert issue_registry.async_get_issue(DOMAIN, key) is None

        await broker.stop()  # the broker's user gets a new password
        broker.users = {"fleet": "changed"}
        await broker.start()
        await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is not None, 30)
        issue = issue_registry.async_get_issue(DOMAIN, key)
        assert issue is not None
        assert issue.translation_key == ISSUE_BROKER_AUTH
        assert issue.translation_placeholders == {"title": entry.title}
        assert reauth_flows(hass, entry.entry_id), "a reauth flow offers the fix"

        await broker.stop()  # fixed on the broker's side
        broker.users = {"fleet": "right"}
        await broker.start()
        await until(hass, lambda: session.connected, 60)
        assert issue_registry.async_get_issue(DOMAIN, key) is None
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


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
