"""Reauth and reconfigure for every kind that has them (OpenDTU, Tasmota, TickrMeter), each
against its real server (the fake DTU, a Mosquitto with a password file): refused credentials
start the reauth flow, at setup and later while running; the flow shows the kind's own error
for wrong credentials and stores nothing; the right ones update the entry, reload it once and
bring it up. Reconfigure changes a setting, refuses what does not connect, reloads once."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.const import (
    CONF_KIND,
    CONF_PROTOCOL,
    CONF_STATUS_TOPIC,
    DOMAIN,
    KIND_OPENDTU,
    KIND_TASMOTA,
    KIND_TICKRMETER,
)
from tests.mosquitto import Mosquitto
from tests.opendtu_fake import FakeOpenDtu, start_fake

from .conftest import Reloads
from .helpers import broker_entry, reauth_flows, until
from .test_sensor import next_poll
from .test_translations import STRINGS

KINDS = [KIND_OPENDTU, KIND_TASMOTA, KIND_TICKRMETER]
pytestmark = pytest.mark.usefixtures("fast_retries")


@dataclass
class Kind:
    """One kind's entry and the server it talks to, whose password the test changes."""

    name: str
    entry: MockConfigEntry
    set_password: Callable[[str], Awaitable[None]]
    stop_server: Callable[[], Awaitable[None]]
    refused_error: str  # the reauth form's error for wrong credentials

    def answer(self, password: str) -> dict[str, str]:
        """The reauth form filled in: the DTU asks for a password, a broker for both."""
        if self.name == KIND_OPENDTU:
            return {CONF_PASSWORD: password}
        return {CONF_USERNAME: "fleet", CONF_PASSWORD: password}

    async def refused_while_running(self, hass: HomeAssistant) -> None:
        """What makes the running entry notice: the DTU's next poll, the broker's retry."""
        if self.name == KIND_OPENDTU:
            await next_poll(hass)


@pytest.fixture(params=KINDS)
async def kind(
    request: pytest.FixtureRequest, opendtu: FakeOpenDtu, tmp_path: Path
) -> AsyncGenerator[Kind]:
    """Each kind's entry, its stored password "right" accepted by its server."""
    name = str(request.param)
    if name == KIND_OPENDTU:
        opendtu.password = "right"

        async def set_dtu_password(password: str) -> None:
            opendtu.password = password

        entry = MockConfigEntry(
            domain=DOMAIN,
            title="OpenDTU-Buero",
            unique_id="34:85:18:a1:b2:c3",
            data={CONF_KIND: KIND_OPENDTU, CONF_URL: opendtu.url, CONF_PASSWORD: "right"},
            options={"websocket": False},
        )
        yield Kind(name, entry, set_dtu_password, opendtu.close, "invalid_auth")
        return
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()

    async def set_broker_password(password: str) -> None:
        await broker.stop()
        broker.users = {"fleet": password}
        await broker.start()

    entry = broker_entry(name, broker, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "right"})
    try:
        yield Kind(name, entry, set_broker_password, broker.stop, "invalid_broker_auth")
    finally:
        await broker.stop()


def reauth_flow_ids(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    return [flow["flow_id"] for flow in reauth_flows(hass, entry.entry_id)]


async def finish_reauth(
    hass: HomeAssistant, kind: Kind, flow_id: str, reloads: Reloads, password: str
) -> None:
    """Wrong credentials first (the kind's error, nothing stored), then the right ones."""
    entry = kind.entry
    before = dict(entry.data)
    reloads.forget()
    result = await hass.config_entries.flow.async_configure(flow_id, kind.answer("wrong"))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": kind.refused_error}
    assert kind.refused_error in STRINGS["config"]["error"]
    assert entry.data == before
    assert reloads.reloads == []

    result = await hass.config_entries.flow.async_configure(flow_id, kind.answer(password))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data == {**before, **kind.answer(password)}
    await hass.async_block_till_done()
    assert reloads.reloads == reloads.setups == [entry.entry_id]
    assert entry.state is ConfigEntryState.LOADED
    assert reauth_flow_ids(hass, entry) == []


async def test_credentials_refused_at_setup_start_reauth(
    hass: HomeAssistant, kind: Kind, reloads: Reloads
) -> None:
    await kind.set_password("changed")
    kind.entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(kind.entry.entry_id)
    await hass.async_block_till_done()
    assert kind.entry.state is ConfigEntryState.SETUP_ERROR
    (flow_id,) = reauth_flow_ids(hass, kind.entry)
    await finish_reauth(hass, kind, flow_id, reloads, "changed")
    await hass.config_entries.async_unload(kind.entry.entry_id)


async def test_credentials_refused_while_running_start_reauth(
    hass: HomeAssistant, kind: Kind, reloads: Reloads
) -> None:
    kind.entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(kind.entry.entry_id)
    await hass.async_block_till_done()
    assert reauth_flow_ids(hass, kind.entry) == []

    await kind.set_password("changed")
    await kind.refused_while_running(hass)
    await until(hass, lambda: bool(reauth_flow_ids(hass, kind.entry)))
    (flow_id,) = reauth_flow_ids(hass, kind.entry)
    await finish_reauth(hass, kind, flow_id, reloads, "changed")
    await hass.config_entries.async_unload(kind.entry.entry_id)


async def test_reauth_started_by_hand_shows_the_kinds_form(
    hass: HomeAssistant, kind: Kind, reloads: Reloads
) -> None:
    """The form asks for what the server checks, with the stored user offered."""
    kind.entry.add_to_hass(hass)
    result = await kind.entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    fields = {str(key): key for key in result["data_schema"].schema}
    assert set(fields) == set(kind.answer(""))
    if CONF_USERNAME in fields:
        assert fields[CONF_USERNAME].description["suggested_value"] == "fleet"
    await finish_reauth(hass, kind, result["flow_id"], reloads, "right")
    await hass.config_entries.async_unload(kind.entry.entry_id)


# --- reconfigure -------------------------------------------------------------------------


async def moved_dtu(opendtu: FakeOpenDtu) -> FakeOpenDtu:
    return await start_fake(
        FakeOpenDtu(overview=opendtu.overview, details=opendtu.details, password="right")
    )


async def test_reconfigure_changes_a_setting_and_reloads_once(
    hass: HomeAssistant, kind: Kind, opendtu: FakeOpenDtu, reloads: Reloads
) -> None:
    """A change that keeps the same device or fleet: the DTU at a new address; a broker
    spoken to in MQTT 5; TickrMeter's status on another topic. A wrong password first."""
    entry = kind.entry
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    reloads.forget()
    moved = await moved_dtu(opendtu) if kind.name == KIND_OPENDTU else None
    try:
        result = await entry.start_reconfigure_flow(hass)
        assert result["step_id"] == "reconfigure"
        shown = {str(key) for key in result["data_schema"].schema}
        assert CONF_PASSWORD in shown  # offered, never prefilled
        stored = {k: v for k, v in entry.data.items() if k not in (CONF_KIND, CONF_PASSWORD)}
        if moved is not None:
            changes: dict[str, Any] = {CONF_URL: moved.url}
        elif kind.name == KIND_TASMOTA:
            changes = {CONF_PROTOCOL: "5"}
        else:
            changes = {CONF_PROTOCOL: "5", CONF_STATUS_TOPIC: "FLEET_STATUS"}
        answer = {**stored, **changes}
        before = dict(entry.data)

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**answer, CONF_PASSWORD: "wrong"}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": kind.refused_error}
        assert entry.data == before and reloads.reloads == []

        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**answer, CONF_PASSWORD: "right"}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        assert {k: entry.data[k] for k in changes} == changes
        await hass.async_block_till_done()
        assert reloads.reloads == reloads.setups == [entry.entry_id]
        assert entry.state is ConfigEntryState.LOADED
        coordinator = entry.runtime_data.coordinator
        if moved is not None:
            assert coordinator.collector.client.url == moved.url
        else:
            assert coordinator.session.settings["protocol"] == "5"
            await until(hass, lambda: coordinator.session.connected)
        if kind.name == KIND_TICKRMETER:
            assert coordinator.tracker.topics.status == "FLEET_STATUS"
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        if moved is not None:
            await moved.close()


async def test_reconfigure_to_something_that_does_not_answer_stores_nothing(
    hass: HomeAssistant, kind: Kind, reloads: Reloads
) -> None:
    """The same settings once the server is gone: the form says so, the entry keeps its own."""
    entry = kind.entry
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    reloads.forget()
    before = dict(entry.data)
    result = await entry.start_reconfigure_flow(hass)
    await kind.stop_server()
    answer = {k: v for k, v in entry.data.items() if k != CONF_KIND}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], answer)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data == before and reloads.reloads == []
    await hass.config_entries.async_unload(entry.entry_id)
