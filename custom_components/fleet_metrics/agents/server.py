"""The agent server inside Home Assistant: one hub and one endpoint per HA, not per entry.

The endpoint must answer before and after the "Host agents" entry is loaded (an agent that
connects while it is not is refused like an unknown host), and HA's HTTP server cannot drop a
route, so the hub and the view are made once, in ``async_setup``, and kept under a
``HassKey``. The entry hands the hub its hosts while it is loaded.

Where an agent resumes (its boot_id and the last seq applied) is kept in HA's own ``Store``
(``.storage/fleet_metrics.agents``), not in the config entry and not in SQLite: it changes
with every batch, the entry file is rewritten whole on every change, and HA's ``Store``
already writes atomically, batches writes (``async_delay_save``) and writes a last time
when HA stops. Without it a restarted HA would answer ``resume_from=0`` and count the
batches it had applied before as gaps. The token hashes live in the hosts' subentries:
they change only when a host is added, rotated or removed, and removing the subentry then
removes the hash with it.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.setup import async_when_setup
from homeassistant.util.hass_dict import HassKey

from ..const import DOMAIN
from ..core.agent.protocol import Batch
from ..core.rejects import Rejects
from ..core.sources.agents.hub import GOING_AWAY, HostState, Hub
from ..core.sources.agents.store import HostRecord, Progress
from .view import AgentView

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
STORAGE_KEY: Final = f"{DOMAIN}.agents"
SAVE_DELAY: Final = 30.0  # seconds: at most one progress write per half minute


class AgentServer:
    """The hub, the resume points it persists, and nothing per entry."""

    def __init__(self, hass: HomeAssistant, hub: Hub, store: Store[dict[str, Any]]) -> None:
        self.hass = hass
        self.hub = hub
        self._store = store
        self.progress: dict[str, dict[str, Any]] = {}
        self._save_pending = False
        hub.subscribe(on_batch=self._on_batch)

    async def async_load(self) -> None:
        self.progress = dict(await self._store.async_load() or {})

    def records(self, token_hashes: dict[str, str]) -> dict[str, HostRecord]:
        """Host records for the hub: the hashes from the subentries, progress from the store."""
        records: dict[str, HostRecord] = {}
        for name, token_hash in token_hashes.items():
            saved = self.progress.get(name, {})
            records[name] = HostRecord(
                name=name,
                token_hash=token_hash,
                created=0.0,
                last_seen=saved.get("last_seen"),
                agent_version=str(saved.get("agent_version", "")),
                boot_id=str(saved.get("boot_id", "")),
                last_seq=int(saved.get("last_seq", 0)),
            )
        return records

    @callback
    def set_hosts(self, token_hashes: dict[str, str]) -> None:
        """The hosts now registered: a removed one is cut off at once and forgotten."""
        self._merge(self.hub.progress())
        for name in [name for name in self.progress if name not in token_hashes]:
            del self.progress[name]
            self._schedule_save()
        self.hub.set_hosts(self.records(token_hashes))

    @callback
    def release(self) -> None:
        """The entry unloads: keep where each host was, cut every connection (an agent
        that comes back meanwhile is refused like an unknown host)."""
        self._merge(self.hub.progress())
        self._schedule_save()
        self.hub.set_hosts({})

    @callback
    def forget_all(self) -> None:
        """The entry is deleted: no resume point outlives its host."""
        self.progress.clear()
        self._schedule_save()

    @callback
    def _on_batch(self, state: HostState, batch: Batch) -> None:
        self._schedule_save()

    @callback
    def _schedule_save(self) -> None:
        if not self._save_pending:
            self._save_pending = True
            self._store.async_delay_save(self._data_to_save, SAVE_DELAY)

    @callback
    def _data_to_save(self) -> dict[str, dict[str, Any]]:
        self._save_pending = False
        self._merge(self.hub.progress())
        return self.progress

    def _merge(self, progress: list[Progress]) -> None:
        for item in progress:
            if item.name in self.hub.hosts:
                self.progress[item.name] = {
                    "boot_id": item.boot_id,
                    "last_seq": item.last_seq,
                    "last_seen": item.last_seen,
                    "agent_version": item.agent_version,
                }

    @callback
    def stop(self, _event: Event | None = None) -> None:
        """HA stops: close every agent connection; nothing is applied after this, so the
        final write the store makes now is the last word."""
        self.hub.close_all(GOING_AWAY, "Home Assistant stopping")
        self._merge(self.hub.progress())
        self._store.async_delay_save(lambda: self.progress, 0)


AGENT_SERVER: HassKey[AgentServer] = HassKey(f"{DOMAIN}_agent_server")


async def async_setup_agent_server(hass: HomeAssistant) -> AgentServer:
    """Make the hub, load the resume points and register the endpoint, once per HA."""
    if (server := hass.data.get(AGENT_SERVER)) is not None:
        return server
    hub = Hub(rejects=Rejects("agents"))
    server = AgentServer(hass, hub, Store(hass, STORAGE_VERSION, STORAGE_KEY))
    await server.async_load()
    hass.data[AGENT_SERVER] = server

    async def register_view(hass: HomeAssistant, _component: str) -> None:
        hass.http.register_view(AgentView(hub))

    # "http" is a dependency, so this registers at once; it also holds where HTTP comes later.
    async_when_setup(hass, "http", register_view)
    hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, server.stop)
    return server
