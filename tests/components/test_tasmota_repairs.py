"""Tasmota TLS files that do not load stop the setup with the reason, not retried: the file
must change first. (A broker that refuses the credentials is a repair issue for every broker
kind: test_repairs.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant

from custom_components.fleet_metrics.const import (
    CONF_CA_FILE,
    CONF_CERT_FILE,
    CONF_KEY_FILE,
    CONF_TLS,
)
from tests.mosquitto import Mosquitto

from .helpers import tasmota_entry
from .test_translations import STRINGS


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
    entry = tasmota_entry(mosquitto, **{CONF_TLS: True, **paths})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR  # not retried: the file must change
    assert entry.error_reason_translation_key == "broker_tls_files"
    placeholders = entry.error_reason_translation_placeholders or {}
    assert placeholders.get("error")
    assert "broker_tls_files" in STRINGS["exceptions"]
