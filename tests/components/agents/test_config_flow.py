"""The "Host agents" entry and its hosts: the token is shown once and never stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.fleet_metrics.agents.server import AGENT_SERVER
from custom_components.fleet_metrics.const import (
    CONF_KIND,
    CONF_TOKEN_HASH,
    DOMAIN,
    KIND_AGENTS,
    SUBENTRY_HOST,
)
from custom_components.fleet_metrics.core.agent.protocol import Hello
from custom_components.fleet_metrics.core.sources.agents.hub import Refused
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token

from .conftest import HOST, agents_entry


async def _create_agents_entry(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert "agents" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "agents"}
    )
    if result["type"] is FlowResultType.FORM:
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    return dict(result)


async def test_one_host_agents_entry(hass: HomeAssistant) -> None:
    result = await _create_agents_entry(hass)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Host agents"
    assert result["data"] == {CONF_KIND: KIND_AGENTS}
    await hass.async_block_till_done()
    again = await _create_agents_entry(hass)
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "single_instance_allowed"
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert not entry.supports_options  # hosts are subentries, not options


async def _add_host(hass: HomeAssistant, entry_id: str, name: str) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry_id, SUBENTRY_HOST), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    return dict(
        await hass.config_entries.subentries.async_configure(result["flow_id"], {CONF_HOST: name})
    )


async def test_adding_a_host_shows_its_token_once(hass: HomeAssistant) -> None:
    entry = agents_entry(hosts={})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    shown = await _add_host(hass, entry.entry_id, HOST)
    assert shown["step_id"] == "token"
    token = shown["description_placeholders"]["token"]
    assert token.startswith("fma_") and len(token) == 4 + 43
    config = shown["description_placeholders"]["config"]
    assert f'host = "{HOST}"' in config and f'token = "{token}"' in config
    assert 'url = "ws://' in config and "/api/fleet_metrics/agent" in config

    done = await hass.config_entries.subentries.async_configure(shown["flow_id"], {})
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (subentry,) = entry.subentries.values()
    assert dict(subentry.data) == {
        CONF_HOST: HOST,
        CONF_TOKEN_HASH: hashlib.sha256(token.encode()).hexdigest(),
    }
    # Never again: neither the entry nor what HA saves holds the token.
    assert token not in json.dumps(entry.as_dict(), default=str)
    # The hub knows the host at once, by its hash: the shown token works, another does not.
    hub = hass.data[AGENT_SERVER].hub
    hello = Hello(HOST, "0.1.0", "boot", ())
    assert hub.authenticate(hello, hash_token(token)).name == HOST
    with pytest.raises(Refused) as refused:
        hub.authenticate(hello, hash_token(token + "x"))
    assert refused.value.code == 4001


async def test_host_names_are_checked(hass: HomeAssistant) -> None:
    entry = agents_entry()
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for bad in ("", "-pve", "pve 1", "a" * 64, "pve/1", "pvé"):
        result = await _add_host(hass, entry.entry_id, bad)
        assert result["errors"] == {CONF_HOST: "invalid_host_name"}, bad
    taken = await _add_host(hass, entry.entry_id, HOST)
    assert taken["errors"] == {CONF_HOST: "host_exists"}
    assert len(entry.subentries) == 1


async def test_new_token_replaces_the_old_one(hass: HomeAssistant) -> None:
    entry = agents_entry()
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    (subentry,) = entry.subentries.values()
    old_hash = subentry.data[CONF_TOKEN_HASH]
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    confirm = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"next_step_id": "new_token"}
    )
    assert confirm["step_id"] == "new_token"
    shown = await hass.config_entries.subentries.async_configure(confirm["flow_id"], {})
    assert shown["step_id"] == "reconfigure_token"
    placeholders = shown["description_placeholders"]
    assert placeholders is not None
    token = placeholders["token"]
    assert entry.subentries[subentry.subentry_id].data[CONF_TOKEN_HASH] == old_hash
    done = await hass.config_entries.subentries.async_configure(shown["flow_id"], {})
    assert done["type"] is FlowResultType.ABORT
    assert done["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    stored = entry.subentries[subentry.subentry_id].data
    assert stored[CONF_TOKEN_HASH] == hash_token(token) != old_hash
    assert hass.data[AGENT_SERVER].hub.hosts[HOST].token_hash == hash_token(token)


async def test_reconfigure_of_the_entry_itself_aborts(hass: HomeAssistant) -> None:
    entry = agents_entry()
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_RECONFIGURE, "entry_id": entry.entry_id}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "nothing_to_reconfigure"
