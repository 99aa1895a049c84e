from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.opendtu_fake import FakeOpenDtu

from .conftest import setup_entry


async def test_diagnostics_redact_credentials_and_addresses(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, opendtu_entry)
    text = json.dumps(diagnostics)
    assert "s3cret" not in text
    assert "34:85:18" not in text.upper()
    # the DTU's URL and address (the README promises addresses are redacted)
    assert opendtu.url not in text
    assert "127.0.0.1" not in text
    assert diagnostics["entry"]["data"]["url"] == "**REDACTED**"
    assert diagnostics["entry"]["data"]["password"] == "**REDACTED**"
    assert diagnostics["snapshot"]["network"]["mac"] == "**REDACTED**"
    assert diagnostics["snapshot"]["network"]["ip"] == "**REDACTED**"
    assert diagnostics["snapshot"]["network"]["rssi"] is not None
    inverter = diagnostics["snapshot"]["inverters"]["114182345678"]
    assert inverter["values"]["power"] == 70.1
    assert diagnostics["snapshot"]["system"]["firmware"] == "v26.3.30"
    assert diagnostics["last_update_success"] is True
    assert diagnostics["live_parse_errors"] == 0
