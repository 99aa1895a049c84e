"""The broker form's TLS and MQTT version, against a real Mosquitto TLS listener (it asks for
a client certificate): what connects is saved and set up; unreadable files, a failed
handshake and a host name the certificate does not name are clear form errors."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.fleet_metrics.const import (
    CONF_CA_FILE,
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    CONF_PROTOCOL,
    CONF_TLS,
    CONF_TLS_INSECURE,
    DOMAIN,
)
from tests.mosquitto import Mosquitto

from .helpers import FLEET, start_tickrmeter_flow, state_of, until


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncGenerator[Mosquitto]:
    broker = Mosquitto(tmp_path, tls=True)
    await broker.start()
    yield broker
    await broker.stop()


def tls_form(broker: Mosquitto, **changes: Any) -> dict[str, Any]:
    files = broker.workdir
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: broker.port,
        CONF_TLS: True,
        CONF_CA_FILE: str(files / "ca.crt"),
        CONF_CERT_FILE: str(files / "client.crt"),
        CONF_KEY_FILE: str(files / "client.key"),
        **changes,
    }


async def submit(hass: HomeAssistant, form: dict[str, Any]) -> dict[str, Any]:
    result = await start_tickrmeter_flow(hass)
    return await hass.config_entries.flow.async_configure(result["flow_id"], form)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_tls_with_a_client_certificate_is_saved_and_connects(
    hass: HomeAssistant, tls_broker: Mosquitto, protocol: str
) -> None:
    result = await submit(hass, tls_form(tls_broker, **{CONF_PROTOCOL: protocol}))
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    assert result["data"][CONF_TLS] is True
    assert result["data"][CONF_PROTOCOL] == protocol
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.coordinator.session.settings["protocol"] == protocol
    await until(hass, lambda: state_of(hass, f"{FLEET}_devices_online") == "0")  # connected
    await hass.config_entries.async_unload(entry.entry_id)


async def test_unreadable_tls_files_are_named_at_their_field(
    hass: HomeAssistant, tls_broker: Mosquitto, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    for changes, errors in [
        ({CONF_CA_FILE: str(tmp_path / "missing.crt")}, {CONF_CA_FILE: "invalid_ca_file"}),
        ({CONF_CA_FILE: str(garbage)}, {CONF_CA_FILE: "invalid_ca_file"}),
        ({CONF_CERT_FILE: str(garbage)}, {CONF_CERT_FILE: "invalid_client_cert"}),
        # A certificate with a key that is not its own.
        ({CONF_KEY_FILE: str(tls_broker.workdir / "server.key")},
         {CONF_CERT_FILE: "invalid_client_cert"}),
        ({CONF_CERT_FILE: ""}, {CONF_KEY_FILE: "invalid_client_cert"}),  # a key alone
    ]:  # fmt: skip
        result = await submit(hass, tls_form(tls_broker, **changes))
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == errors, changes


async def test_a_failed_handshake_is_its_own_error(
    hass: HomeAssistant, tls_broker: Mosquitto, mosquitto: Mosquitto
) -> None:
    # The system's CAs do not know the throwaway CA that signed the broker's certificate.
    result = await submit(hass, tls_form(tls_broker, **{CONF_CA_FILE: ""}))
    assert result["errors"] == {"base": "tls_failed"}
    # TLS to a broker that does not speak it.
    result = await submit(hass, tls_form(tls_broker, **{CONF_PORT: mosquitto.port}))
    assert result["errors"] in ({"base": "tls_failed"}, {"base": "cannot_connect"})


async def test_insecure_skips_only_the_host_name_check(
    hass: HomeAssistant, tls_broker: Mosquitto
) -> None:
    """The broker's certificate names 127.0.0.1, not localhost."""
    result = await submit(hass, tls_form(tls_broker, **{CONF_HOST: "localhost"}))
    assert result["errors"] == {"base": "tls_failed"}
    result = await submit(
        hass, tls_form(tls_broker, **{CONF_HOST: "localhost", CONF_TLS_INSECURE: True})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.config_entries.async_unload(entry.entry_id)
