"""Repair issues for problems that last until the user acts: shown while they last, gone
when the entry works again (each keyed by the entry, so two entries never share one)."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .core.mqtt.session import ConnectionState

ISSUE_BROKER_AUTH = "broker_auth_failed"
ISSUE_FIRMWARE = "dtu_firmware_unsupported"


def issue_id(kind: str, entry: ConfigEntry) -> str:
    return f"{kind}_{entry.entry_id}"


@callback
def async_set_issue(
    hass: HomeAssistant,
    entry: ConfigEntry,
    kind: str,
    active: bool,
    placeholders: dict[str, str] | None = None,
) -> None:
    """Raise the issue ``kind`` for ``entry`` while ``active``, delete it once not."""
    key = issue_id(kind, entry)
    if not active:
        ir.async_delete_issue(hass, DOMAIN, key)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        key,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders={"title": entry.title, **(placeholders or {})},
    )


@callback
def async_broker_state_changed(
    hass: HomeAssistant, entry: ConfigEntry, state: ConnectionState
) -> None:
    """A broker that starts refusing the credentials is a repair issue and a reauth (the
    session keeps retrying, so a fix on the broker's side clears both)."""
    if state is ConnectionState.AUTH_FAILED:
        async_set_issue(hass, entry, ISSUE_BROKER_AUTH, True)
        entry.async_start_reauth(hass)
    elif state is ConnectionState.CONNECTED:
        async_set_issue(hass, entry, ISSUE_BROKER_AUTH, False)
