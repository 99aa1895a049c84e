"""Every entity a reporting host gets, snapshotted; diagnostics without tokens or hashes."""

from __future__ import annotations

import json

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import snapshot_platform
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.fleet_metrics.const import DOMAIN
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token

from .conftest import TOKEN, Agent, AgentRig, until

# 9 host sensors, / used, eno1 in/out, nvme0n1 read/write, 3 temperatures; and online.
SENSORS = 9 + 1 + 2 + 2 + 3
BINARY_SENSORS = 1


async def _report(hass: HomeAssistant, rig: AgentRig, count: int = SENSORS + 1) -> Agent:
    agent = rig.start_agent()
    agent.send(1)
    agent.send(2)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    registry = er.async_get(hass)

    def complete() -> bool:
        entities = er.async_entries_for_config_entry(registry, entry.entry_id)
        states = [hass.states.get(entity.entity_id) for entity in entities]
        return len(entities) == count and all(
            s is not None and s.state not in ("unknown", "unavailable") for s in states
        )

    await until(hass, complete)
    return agent


@pytest.mark.parametrize(
    ("platforms", "count"),
    [([Platform.SENSOR], SENSORS), ([Platform.BINARY_SENSOR], BINARY_SENSORS)],
)
async def test_host_entities(
    hass: HomeAssistant,
    rig: AgentRig,
    count: int,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    agent = await _report(hass, rig, count)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    (subentry_id,) = entry.subentries
    for entity in er.async_entries_for_config_entry(entity_registry, entry.entry_id):
        assert entity.config_subentry_id == subentry_id  # removing the host removes them
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
    await agent.stop()


async def test_diagnostics_hold_no_token_or_hash(
    hass: HomeAssistant, rig: AgentRig, hass_client: ClientSessionGenerator
) -> None:
    agent = await _report(hass, rig)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    assert TOKEN not in text
    assert hash_token(TOKEN) not in text
    assert "token_hash" not in text
    # nor any address: the agent's connection (loopback here) or HA's own URL
    assert "127.0.0.1" not in text
    assert rig.url not in text
    host = diagnostics["hosts"]["pve1"]
    assert host["online"] is True
    assert host["batches_received"] == 2
    assert host["seq_gaps"] == 0
    assert host["readings"]["cpu_percent"] == 25.0
    assert host["readings"]["temperatures"]["coretemp/Package id 0"] == 61.0
    await agent.stop()
