"""Where each agent resumes, as HA's ``Store`` keeps it: written after the save delay, again
after later batches, and gone with the entry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.fleet_metrics.agents.server import AGENT_SERVER, SAVE_DELAY, STORAGE_KEY
from custom_components.fleet_metrics.const import DOMAIN

from .conftest import HOST, AgentRig, until


async def _after_save_delay(hass: HomeAssistant) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=SAVE_DELAY + 1))
    await hass.async_block_till_done()


def _saved(hass_storage: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = hass_storage[STORAGE_KEY]["data"]
    return data


async def test_resume_points_are_saved_after_the_delay_and_again_later(
    hass: HomeAssistant, rig: AgentRig, hass_storage: dict[str, Any]
) -> None:
    """Batches are not written one by one; the write after the delay holds the last seq
    applied, and a batch after that write schedules the next one."""
    agent = rig.start_agent(boot_id="boot-7")
    agent.send(1)
    agent.send(2)
    await until(hass, lambda: agent.outbox.acked == 2)
    assert STORAGE_KEY not in hass_storage  # not yet: at most one write per delay
    await _after_save_delay(hass)
    saved = _saved(hass_storage)[HOST]
    assert (saved["boot_id"], saved["last_seq"], saved["agent_version"]) == ("boot-7", 2, "0.1.0")
    assert saved["last_seen"] is not None

    agent.send(3)
    await until(hass, lambda: agent.outbox.acked == 3)
    assert _saved(hass_storage)[HOST]["last_seq"] == 2  # the next write is still pending
    await _after_save_delay(hass)
    assert _saved(hass_storage)[HOST]["last_seq"] == 3
    await agent.stop()


async def test_deleting_the_entry_forgets_every_resume_point(
    hass: HomeAssistant, rig: AgentRig, hass_storage: dict[str, Any]
) -> None:
    """A host added again later under the same name starts from scratch, not from where
    the deleted entry's agent was."""
    agent = rig.start_agent()
    agent.send(1)
    await until(hass, lambda: agent.outbox.acked == 1)
    await _after_save_delay(hass)
    assert _saved(hass_storage)[HOST]["last_seq"] == 1
    await agent.stop()

    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    server = hass.data[AGENT_SERVER]
    assert server.progress == {}
    assert server.records({HOST: "hash"})[HOST].last_seq == 0  # resume_from=0 for a newcomer
    await _after_save_delay(hass)
    assert _saved(hass_storage) == {}
