"""The host flow's edges: the agent URL HA gives, a failure while making the token, and the
guest pick's order for ids picked long ago."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.fleet_metrics.agents.coordinator import CONF_GUESTS
from custom_components.fleet_metrics.agents.server import AGENT_SERVER
from custom_components.fleet_metrics.const import (
    AGENT_PATH,
    CONF_KIND,
    CONF_TOKEN_HASH,
    DOMAIN,
    KIND_AGENTS,
    SUBENTRY_HOST,
)
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token

from .conftest import HOST, TOKEN, agents_entry, open_guest_pick

NEW_HOST = "pve2"


async def _loaded(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _add_host(hass: HomeAssistant, entry_id: str) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, SUBENTRY_HOST), context={"source": SOURCE_USER}
    )
    return dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_HOST: NEW_HOST}
        )
    )


def _placeholders(result: Any) -> dict[str, str]:
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    return dict(placeholders)


@pytest.mark.parametrize(
    ("internal_url", "agent_url"),
    [
        ("https://ha.example.org:8443", f"wss://ha.example.org:8443{AGENT_PATH}"),
        ("http://192.168.1.5:8123", f"ws://192.168.1.5:8123{AGENT_PATH}"),
        ("https://ha.example.org", f"wss://ha.example.org{AGENT_PATH}"),
    ],
)
async def test_the_agent_url_follows_ha_s_own_address(
    hass: HomeAssistant, internal_url: str, agent_url: str
) -> None:
    """HTTPS becomes wss:// (the agent would otherwise speak plain text to a TLS port)."""
    entry = await _loaded(hass, agents_entry(hosts={}))
    hass.config.internal_url = internal_url
    shown = await _add_host(hass, entry.entry_id)
    assert shown["step_id"] == "token"
    placeholders = _placeholders(shown)
    assert placeholders["url"] == agent_url
    assert f'url = "{agent_url}"' in placeholders["config"]


async def test_without_a_known_address_the_agent_url_is_a_guess(hass: HomeAssistant) -> None:
    """No internal, external or cloud URL and no usable IP: the usual mDNS name is shown,
    the host is still added."""
    entry = await _loaded(hass, agents_entry(hosts={}))
    hass.config.internal_url = None
    hass.config.external_url = None
    api, hass.config.api = hass.config.api, None
    try:
        shown = await _add_host(hass, entry.entry_id)
    finally:
        hass.config.api = api
    assert _placeholders(shown)["url"] == (f"ws://homeassistant.local:8123{AGENT_PATH}")
    done = await hass.config_entries.subentries.async_configure(shown["flow_id"], {})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    assert done["data"][CONF_HOST] == NEW_HOST


async def test_a_failure_while_making_the_token_is_shown_and_the_flow_recovers(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed internal URL (HA's own parser refuses it) makes ``get_url`` raise: the
    form says ``unknown`` instead of the flow ending in a server error, nothing is stored,
    and once the URL is fixed the same flow goes on."""
    entry = await _loaded(hass, agents_entry(hosts={}))
    hass.config.internal_url = "http://[::1"
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST), context={"source": SOURCE_USER}
    )
    failed = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_HOST: NEW_HOST}
    )
    assert failed["type"] is FlowResultType.FORM
    assert failed["step_id"] == "user"
    assert failed["errors"] == {"base": "unknown"}
    assert f"making a token for {NEW_HOST}" in caplog.text
    assert entry.subentries == {}

    hass.config.internal_url = "http://ha.lan:8123"
    shown = await hass.config_entries.subentries.async_configure(
        failed["flow_id"], {CONF_HOST: NEW_HOST}
    )
    assert shown["step_id"] == "token"
    assert _placeholders(shown)["url"] == f"ws://ha.lan:8123{AGENT_PATH}"
    done = await hass.config_entries.subentries.async_configure(shown["flow_id"], {})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    token = _placeholders(shown)["token"]
    assert done["data"][CONF_TOKEN_HASH] == hash_token(token)


async def test_a_failed_new_token_keeps_the_old_one(hass: HomeAssistant) -> None:
    """The same failure on "New token": the form says ``unknown`` and the old token still
    works; the next try replaces it."""
    entry = await _loaded(hass, agents_entry())
    (subentry,) = entry.subentries.values()
    hass.config.internal_url = "http://[::1"
    menu = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    confirm = await hass.config_entries.subentries.async_configure(
        menu["flow_id"], {"next_step_id": "new_token"}
    )
    failed = await hass.config_entries.subentries.async_configure(confirm["flow_id"], {})
    assert failed["step_id"] == "new_token"
    assert failed["errors"] == {"base": "unknown"}
    hub = hass.data[AGENT_SERVER].hub
    assert entry.subentries[subentry.subentry_id].data[CONF_TOKEN_HASH] == hash_token(TOKEN)
    assert hub.hosts[HOST].token_hash == hash_token(TOKEN)

    hass.config.internal_url = "http://ha.lan:8123"
    shown = await hass.config_entries.subentries.async_configure(failed["flow_id"], {})
    assert shown["step_id"] == "reconfigure_token"
    done = await hass.config_entries.subentries.async_configure(shown["flow_id"], {})
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    new_hash = hash_token(_placeholders(shown)["token"])
    assert hub.hosts[HOST].token_hash == new_hash != hash_token(TOKEN)


async def test_guests_picked_long_ago_are_listed_after_the_others(hass: HomeAssistant) -> None:
    """Ids not of the ``type/vmid`` shape (or with a vmid no real guest has) stay
    selectable, after the real ones and by their text; the well-formed ones by number."""
    picked = ["qemu/100", "old guest", "qemu/99", "qemu/1234567890", "lxc/\uff17", "lxc/5"]
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Host agents",
        unique_id=KIND_AGENTS,
        data={CONF_KIND: KIND_AGENTS},
        subentries_data=[
            {
                "data": {
                    CONF_HOST: HOST,
                    CONF_TOKEN_HASH: hash_token(TOKEN),
                    CONF_GUESTS: picked,
                },
                "subentry_type": SUBENTRY_HOST,
                "title": HOST,
                "unique_id": HOST,
            }
        ],
    )
    await _loaded(hass, entry)
    (subentry,) = entry.subentries.values()
    form = await open_guest_pick(hass, entry, subentry.subentry_id)
    schema = form["data_schema"]
    assert schema is not None
    selector = schema.schema[CONF_GUESTS]
    options = selector.config["options"]
    assert [option["value"] for option in options] == [
        "lxc/5",
        "qemu/99",
        "qemu/100",
        "lxc/\uff17",
        "old guest",
        "qemu/1234567890",
    ]
    # The host has not reported: each id is its own label.
    assert all(option["label"] == option["value"] for option in options)
