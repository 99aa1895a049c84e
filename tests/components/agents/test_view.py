"""A real agent client through HA's HTTP server: sensors, events, grace, revocation, refusals."""

from __future__ import annotations

import aiohttp
import pytest
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.fleet_metrics.agents.coordinator import device_identifier
from custom_components.fleet_metrics.const import DOMAIN, EVENT_HOST_OFFLINE, EVENT_HOST_ONLINE
from custom_components.fleet_metrics.core.agent.protocol import (
    CLOSE_NOT_AUTHORISED,
    Hello,
    encode,
)
from custom_components.fleet_metrics.core.sources.agents.hub import HubLimits

from .conftest import BOOT, HOST, TOKEN, AgentRig, until

ONLINE = f"binary_sensor.{HOST}_online"
CPU = f"sensor.{HOST}_cpu_usage"


def state(hass: HomeAssistant, entity_id: str) -> str | None:
    found = hass.states.get(entity_id)
    return found.state if found else None


async def test_agent_readings_become_sensors(hass: HomeAssistant, rig: AgentRig) -> None:
    assert state(hass, ONLINE) == STATE_OFF  # every host starts offline
    assert state(hass, CPU) is None  # entities come with the data
    agent = rig.start_agent()
    agent.send(1)
    agent.send(2)  # rates and CPU % need two readings
    await until(hass, lambda: agent.outbox.acked == 2 and state(hass, CPU) is not None)
    await until(hass, lambda: state(hass, f"sensor.{HOST}_eno1_in") not in (None, "unknown"))

    assert state(hass, ONLINE) == STATE_ON
    assert float(state(hass, CPU) or "nan") == pytest.approx(25.0)
    assert float(state(hass, f"sensor.{HOST}_memory_used") or "nan") == pytest.approx(75.0)
    assert float(state(hass, f"sensor.{HOST}_swap_used") or "nan") == pytest.approx(10.0)
    assert float(state(hass, f"sensor.{HOST}_disk_used") or "nan") == pytest.approx(40.0)
    assert float(state(hass, f"sensor.{HOST}_load_1_min") or "nan") == pytest.approx(0.52)
    assert float(state(hass, f"sensor.{HOST}_cpu_temperature") or "nan") == 61.0
    # 1 MB/s shown in the suggested Mbit/s; 2 MB/s read shown in MB/s
    assert float(state(hass, f"sensor.{HOST}_eno1_in") or "nan") == pytest.approx(8.0)
    assert float(state(hass, f"sensor.{HOST}_nvme0n1_read") or "nan") == pytest.approx(2.0)
    boot = hass.states.get(f"sensor.{HOST}_boot_time")
    assert boot is not None
    assert boot.state == "2025-12-29T00:00:00+00:00"
    assert BOOT == 1_766_966_400.0
    device = dr.async_get(hass).async_get_device(identifiers={device_identifier(HOST)})
    assert device is not None
    assert (device.model, device.sw_version) == ("Debian GNU/Linux 12 (bookworm)", "0.1.0")
    assert rig.event_names() == [(EVENT_HOST_ONLINE, HOST)]
    await agent.stop()


async def test_offline_after_grace_and_back(hass: HomeAssistant, rig: AgentRig) -> None:
    agent = rig.start_agent()
    agent.send(1)
    await until(hass, lambda: state(hass, f"sensor.{HOST}_memory_used") not in (None,))
    await agent.stop()  # the connection ends; the host stays online for the grace period
    assert state(hass, ONLINE) == STATE_ON
    await until(hass, lambda: state(hass, ONLINE) == STATE_OFF)
    assert state(hass, f"sensor.{HOST}_memory_used") == STATE_UNAVAILABLE
    assert state(hass, ONLINE) == STATE_OFF  # saying "offline" is its job: available
    assert rig.event_names() == [(EVENT_HOST_ONLINE, HOST), (EVENT_HOST_OFFLINE, HOST)]
    offline = rig.events[-1]
    assert offline.data == {"entry_id": offline.data["entry_id"], "host": HOST}

    again = rig.start_agent()
    again.send(2)
    await until(hass, lambda: state(hass, f"sensor.{HOST}_memory_used") == "75.0")
    assert rig.event_names()[-1] == (EVENT_HOST_ONLINE, HOST)
    await again.stop()


async def test_quick_reconnect_does_not_flap(hass: HomeAssistant, rig: AgentRig) -> None:
    rig.hub.limits = HubLimits(grace=5.0)
    first = rig.start_agent()
    first.send(1)
    await until(hass, lambda: first.outbox.acked == 1)
    await first.stop()
    second = rig.start_agent()  # same host, same boot: resumes after seq 1
    second.outbox.next_seq = 2
    second.send(2)
    await until(hass, lambda: second.outbox.acked == 2)
    assert rig.event_names() == [(EVENT_HOST_ONLINE, HOST)]
    assert rig.hub.hosts[HOST].seq_gaps == 0
    await second.stop()
    rig.hub.limits = HubLimits(grace=0.3)


async def test_removing_the_host_revokes_it(hass: HomeAssistant, rig: AgentRig) -> None:
    agent = rig.start_agent()
    agent.send(1)
    await until(hass, lambda: state(hass, CPU) is not None or agent.outbox.acked == 1)
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    (subentry_id,) = entry.subentries
    assert er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)

    hass.config_entries.async_remove_subentry(entry, subentry_id)
    await until(hass, lambda: agent.client.stats.refused >= 1)  # cut with 4001, then refused
    assert agent.client.stats.disconnects >= 1
    assert HOST not in rig.hub.hosts
    assert dr.async_get(hass).async_get_device(identifiers={device_identifier(HOST)}) is None
    assert not er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    assert hass.states.get(ONLINE) is None
    # Removal is no outage: no offline event for a host that is gone.
    assert rig.event_names() == [(EVENT_HOST_ONLINE, HOST)]
    await agent.stop()


async def _close_code(rig: AgentRig, token: str, host: str = HOST, query: str = "") -> int | None:
    async with rig.session.ws_connect(
        rig.url + query, headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        await ws.send_str(encode(Hello(host, "0.1.0", "boot-x", ())).decode())
        await ws.receive()
        return ws.close_code


async def test_wrong_token_and_unknown_host_get_the_same_answer(
    hass: HomeAssistant, rig: AgentRig
) -> None:
    assert await _close_code(rig, "fma_wrong") == CLOSE_NOT_AUTHORISED
    assert await _close_code(rig, TOKEN, host="nobody") == CLOSE_NOT_AUTHORISED
    assert rig.hub.stats.auth_failures == 2
    assert state(hass, ONLINE) == STATE_OFF


async def test_token_in_url_or_missing_is_refused_before_the_upgrade(rig: AgentRig) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as in_url:
        await _close_code(rig, TOKEN, query=f"?token={TOKEN}")
    assert in_url.value.status == 400
    with pytest.raises(aiohttp.WSServerHandshakeError) as missing:
        async with rig.session.ws_connect(rig.url):
            pass
    assert missing.value.status == 401
    assert rig.hub.stats.token_in_url == 1
