"""Tasmota's broker problems, as the TickrMeter kind has them: a broker that starts refusing
the credentials (a real Mosquitto whose password changes under a running entry) is a repair
issue and a reauth until it accepts again, and TLS files that do not load stop the setup
with the reason. Retries are shortened so each test takes seconds, not the minute a real
entry waits between refused attempts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.fleet_metrics.tasmota as tasmota
from custom_components.fleet_metrics.const import (
    CONF_CA_FILE,
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    CONF_TLS,
    DOMAIN,
)
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.mqtt.session import BrokerSession
from custom_components.fleet_metrics.repairs import ISSUE_BROKER_AUTH, issue_id
from tests.mosquitto import Mosquitto

from .conftest import Reloads
from .test_repairs import reauth_flows
from .test_tasmota import PLUG_MAC, entry_for, fixture, setup, state_of, until
from .test_translations import STRINGS

ONLINE = "binary_sensor.nxsm200_01_online"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The entry's session retries within a second, refused or not."""

    def session(name: str, settings: Mapping[str, Any]) -> BrokerSession:
        return BrokerSession(
            name,
            settings,
            backoff=Backoff(initial=0.2, maximum=0.5),
            auth_backoff=Backoff(initial=0.2, maximum=0.5),
        )

    monkeypatch.setattr(tasmota, "BrokerSession", session)


async def publish_plug(broker: Mosquitto) -> None:
    """The plug's retained discovery and its LWT, published as the broker's user."""
    await broker.publish(
        [
            (
                f"tasmota/discovery/{PLUG_MAC}/config",
                fixture("discovery_config_energy_plug_v11.0.0.json"),
            ),
            (
                f"tasmota/discovery/{PLUG_MAC}/sensors",
                fixture("discovery_sensors_energy_plug_v11.0.0.json"),
            ),
            ("tele/NXSM200_01/LWT", b"Online"),
        ],
        retain=True,
        username="fleet",
        password="right",
    )


async def running_entry(hass: HomeAssistant, broker: Mosquitto) -> MockConfigEntry:
    entry = entry_for(broker, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "right"})
    await setup(hass, entry)
    await until(hass, lambda: entry.runtime_data.coordinator.session.connected)
    return entry


async def change_password(broker: Mosquitto, password: str) -> None:
    await broker.stop()
    broker.users = {"fleet": password}
    await broker.start()


async def test_a_broker_refusing_the_credentials_later_is_an_issue_until_it_accepts(
    hass: HomeAssistant, tmp_path: Path, issue_registry: ir.IssueRegistry
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        await publish_plug(broker)
        entry = await running_entry(hass, broker)
        key = issue_id(ISSUE_BROKER_AUTH, entry)
        await until(hass, lambda: state_of(hass, ONLINE) == "on")
        assert issue_registry.async_get_issue(DOMAIN, key) is None
        assert not reauth_flows(hass, entry.entry_id)

        await change_password(broker, "changed")
        await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is not None)
        issue = issue_registry.async_get_issue(DOMAIN, key)
        assert issue is not None
        assert issue.translation_key == ISSUE_BROKER_AUTH
        assert issue.severity is ir.IssueSeverity.ERROR
        assert issue.translation_placeholders == {"title": entry.title}
        assert ISSUE_BROKER_AUTH in STRINGS["issues"]
        assert len(reauth_flows(hass, entry.entry_id)) == 1, "one reauth flow offers the fix"
        assert state_of(hass, ONLINE) == STATE_UNAVAILABLE
        # Refused again and again (fast retries): still one issue and one flow.
        refused = entry.runtime_data.coordinator.session
        await until(hass, lambda: refused.outage_started is not None)
        assert len(reauth_flows(hass, entry.entry_id)) == 1

        await change_password(broker, "right")  # fixed on the broker's side
        await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is None)
        await until(hass, lambda: state_of(hass, ONLINE) == "on")
        assert entry.state is ConfigEntryState.LOADED
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_reauth_with_the_new_password_clears_the_issue(
    hass: HomeAssistant, tmp_path: Path, issue_registry: ir.IssueRegistry, reloads: Reloads
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        entry = await running_entry(hass, broker)
        key = issue_id(ISSUE_BROKER_AUTH, entry)
        await change_password(broker, "changed")
        await until(hass, lambda: bool(reauth_flows(hass, entry.entry_id)))
        assert issue_registry.async_get_issue(DOMAIN, key) is not None
        reloads.forget()

        (flow,) = reauth_flows(hass, entry.entry_id)
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],  # type: ignore[index]
            {CONF_USERNAME: "fleet", CONF_PASSWORD: "changed"},
        )
        assert result["reason"] == "reauth_successful"
        await hass.async_block_till_done()
        assert entry.data[CONF_PASSWORD] == "changed"
        assert reloads.reloads == [entry.entry_id]
        assert entry.state is ConfigEntryState.LOADED
        await until(hass, lambda: issue_registry.async_get_issue(DOMAIN, key) is None)
        assert not reauth_flows(hass, entry.entry_id)
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_a_broker_that_is_only_down_is_no_issue(
    hass: HomeAssistant, tmp_path: Path, issue_registry: ir.IssueRegistry
) -> None:
    """Only a refusal lasts until the user acts; an outage ends by itself."""
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    await broker.start()
    try:
        entry = await running_entry(hass, broker)
        session = entry.runtime_data.coordinator.session
        await broker.stop()
        await until(hass, lambda: session.outage_started is not None)
        await until(hass, lambda: session.connects == 1 and not session.connected)
        assert issue_registry.async_get_issue(DOMAIN, issue_id(ISSUE_BROKER_AUTH, entry)) is None
        assert not reauth_flows(hass, entry.entry_id)
        await broker.start()
        await until(hass, lambda: session.connected)
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


@pytest.mark.parametrize(
    "files",
    [
        {CONF_CA_FILE: "missing.crt"},
        {CONF_CA_FILE: "garbage.pem"},
        {CONF_CERT_FILE: "garbage.pem", CONF_KEY_FILE: "garbage.pem"},
    ],
    ids=["missing-ca", "garbage-ca", "garbage-client-cert"],
)
async def test_tls_files_that_do_not_load_stop_the_setup_with_the_reason(
    hass: HomeAssistant, mosquitto: Mosquitto, tmp_path: Path, files: dict[str, str]
) -> None:
    (tmp_path / "garbage.pem").write_text("not a certificate")
    paths = {key: str(tmp_path / name) for key, name in files.items()}
    entry = entry_for(mosquitto, **{CONF_TLS: True, **paths})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR  # not retried: the file must change
    assert entry.error_reason_translation_key == "broker_tls_files"
    placeholders = entry.error_reason_translation_placeholders or {}
    assert placeholders.get("error")
    assert "broker_tls_files" in STRINGS["exceptions"]
