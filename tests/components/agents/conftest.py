"""Host agents in HA: an entry with one host, HA's HTTP server, and a real agent client.

The agent is the project's own ``AgentClient`` with its ``Outbox``, connected over loopback
to HA's HTTP server (aiohttp's test server around ``hass.http.app``) with the host's token
in the Bearer header, exactly as on a host. Batches hold the samples the collectors make.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from unittest.mock import patch

import aiohttp
import pytest
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigEntry, ConfigFlowResult
from homeassistant.const import CONF_HOST, Platform
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.fleet_metrics.agents.server import AGENT_SERVER
from custom_components.fleet_metrics.const import (
    AGENT_PATH,
    CONF_KIND,
    CONF_TOKEN_HASH,
    DOMAIN,
    EVENT_HOST_OFFLINE,
    EVENT_HOST_ONLINE,
    KIND_AGENTS,
    SUBENTRY_HOST,
)
from custom_components.fleet_metrics.core.agent.client import AgentClient, ClientTiming
from custom_components.fleet_metrics.core.agent.config import ServerConfig
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import Hello
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.sources.agents.hub import Hub, HubLimits
from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token

HOST = "pve1"
TOKEN = "fma_" + "A" * 43  # the shape make_token gives; fixed so failures are readable
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: sample times, so rates and snapshots are exact
BOOT = T0 - 86_400 * 3


def agents_entry(hosts: dict[str, str] | None = None) -> MockConfigEntry:
    """The "Host agents" entry with ``hosts`` (name -> token) as subentries."""
    hosts = {HOST: TOKEN} if hosts is None else hosts
    return MockConfigEntry(
        domain=DOMAIN,
        title="Host agents",
        unique_id=KIND_AGENTS,
        data={CONF_KIND: KIND_AGENTS},
        subentries_data=[
            {
                "data": {CONF_HOST: name, CONF_TOKEN_HASH: hash_token(token)},
                "subentry_type": SUBENTRY_HOST,
                "title": name,
                "unique_id": name,
            }
            for name, token in hosts.items()
        ],
    )


def _temperature(chip: str, sensor: str, celsius: float, ns: int) -> Sample:
    return Sample("temperature", {"chip": chip, "sensor": sensor}, {"celsius": celsius}, ns)


def host_samples(step: int) -> list[Sample]:
    """What the fast, medium and slow collectors send at ``T0 + 30 * step``: the CPU is
    25 % busy, eno1 receives 1 MB/s and sends 250 kB/s, nvme0n1 reads 2 MB/s and writes
    500 kB/s, memory is 75 % used, swap 10 %, / is 40 % used (df's way), CPU max 61 °C."""
    t = T0 + 30 * step
    ns = int(t * 1e9)
    cpu_seconds = 30.0 * 4 * step  # 4 CPUs
    return [
        Sample(
            "cpu",
            {"cpu": "total"},
            {"user": cpu_seconds * 0.2, "system": cpu_seconds * 0.05, "idle": cpu_seconds * 0.75},
            ns,
            frozenset({"user", "system", "idle"}),
        ),
        Sample("load", {}, {"load1": 0.52, "load5": 0.61, "load15": 0.7}, ns),
        Sample("memory", {}, {"total_bytes": 16 * 2**30, "available_bytes": 4 * 2**30}, ns),
        Sample("swap", {}, {"total_bytes": 2**30, "free_bytes": int(0.9 * 2**30)}, ns),
        Sample(
            "network",
            {"device": "eno1"},
            {"receive_bytes": 1_000_000 * 30 * step, "transmit_bytes": 250_000 * 30 * step},
            ns,
            frozenset({"receive_bytes", "transmit_bytes"}),
        ),
        Sample(
            "disk",
            {"device": "nvme0n1"},
            {"read_bytes": 2_000_000 * 30 * step, "written_bytes": 500_000 * 30 * step},
            ns,
            frozenset({"read_bytes", "written_bytes"}),
        ),
        Sample(
            "filesystem",
            {"device": "/dev/nvme0n1p2", "mountpoint": "/", "fstype": "ext4"},
            # used = 100 - 55 = 45, available 67.5 (5 reserved): 45 / (45 + 67.5) = 40 %
            {"size_bytes": 100 * 10**9, "free_bytes": 55 * 10**9, "avail_bytes": 675 * 10**8},
            ns,
        ),
        Sample(
            "temperature", {"chip": "coretemp", "sensor": "Package id 0"}, {"celsius": 61.0}, ns
        ),
        Sample("temperature", {"chip": "coretemp", "sensor": "Core 0"}, {"celsius": 57.0}, ns),
        Sample("temperature", {"chip": "nvme", "sensor": "Composite"}, {"celsius": 44.85}, ns),
        Sample(
            "host",
            {
                "os": "Debian GNU/Linux 12 (bookworm)",
                "kernel": "6.8.12-4-pve",
                "cpu_model": "Intel(R) Core(TM) i5-8500T",
                "agent_version": "0.1.0",
                "pve_version": "8.3.0",
            },
            {"boot_time_seconds": BOOT, "cpus": 4},
            ns,
        ),
    ]


@dataclass
class Agent:
    """A running agent client; ``send`` queues a batch the way the agent's tiers do."""

    client: AgentClient
    outbox: Outbox
    task: asyncio.Task[None]

    def send(self, step: int) -> None:
        self.outbox.add(T0 + 30 * step, host_samples(step))
        self.client.wake()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@dataclass
class AgentRig:
    """HA's HTTP server with the agent endpoint, and a way to start agents against it."""

    hass: HomeAssistant
    url: str
    session: aiohttp.ClientSession
    events: list[Event]

    @property
    def hub(self) -> Hub:
        return self.hass.data[AGENT_SERVER].hub

    def start_agent(self, token: str = TOKEN, host: str = HOST, boot_id: str = "boot-1") -> Agent:
        outbox = Outbox(10_000, name=host)
        timing = ClientTiming(
            backoff=Backoff(initial=0.05, maximum=0.2),
            auth_backoff=Backoff(initial=0.05, maximum=0.2),
        )
        client = AgentClient(
            ServerConfig(url=self.url, token=token),
            outbox,
            Hello(host, "0.1.0", boot_id, ()),
            timing,
        )
        task = self.hass.async_create_background_task(client.run(), f"agent {host}")
        return Agent(client, outbox, task)

    def event_names(self) -> list[tuple[str, str]]:
        return [(str(event.event_type), str(event.data["host"])) for event in self.events]


async def open_guest_pick(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str
) -> ConfigFlowResult:
    """The host's menu, then its "Guests" form."""
    menu = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_HOST),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert menu["type"] is FlowResultType.MENU
    form = await hass.config_entries.subentries.async_configure(
        menu["flow_id"], {"next_step_id": "guests"}
    )
    assert form["step_id"] == "guests"
    return form


async def until(hass: HomeAssistant, check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for ``check`` while the event loop (HA, the endpoint, the agent) runs."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)
            await hass.async_block_till_done()


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms the entry sets up; a snapshot test takes one at a time."""
    return [Platform.BINARY_SENSOR, Platform.SENSOR]


@pytest.fixture
async def rig(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator, platforms: list[Platform]
) -> AsyncGenerator[AgentRig]:
    """HTTP first (as the manifest's dependency makes it), then the entry, then the server
    (whose router is frozen from then on)."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "diagnostics", {})
    entry = agents_entry()
    entry.add_to_hass(hass)
    with patch("custom_components.fleet_metrics.PLATFORMS", platforms):
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    client = await hass_client_no_auth()
    url = str(client.make_url(AGENT_PATH)).replace("http://", "ws://")
    events: list[Event] = []

    @callback
    def record(event: Event) -> None:
        events.append(event)

    for name in (EVENT_HOST_ONLINE, EVENT_HOST_OFFLINE):
        hass.bus.async_listen(name, record)
    hass.data[AGENT_SERVER].hub.limits = HubLimits(grace=0.3)
    async with aiohttp.ClientSession() as session:
        yield AgentRig(hass, url, session, events)
