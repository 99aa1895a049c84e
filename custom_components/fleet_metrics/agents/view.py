"""``/api/fleet_metrics/agent`` on Home Assistant's own HTTP server.

No HA login: the agent presents its host token (``Authorization: Bearer``), which the core
endpoint checks against the hub. HA's auth middleware sees a bearer value that is no HA
access token, leaves the request unauthenticated, and lets it through because this view
does not require auth; everything after that is the core handler's, shared with the runner.
"""

from __future__ import annotations

from aiohttp import web
from homeassistant.helpers.http import HomeAssistantView

from ..const import AGENT_PATH
from ..core.sources.agents.endpoint import handle_agent
from ..core.sources.agents.hub import Hub


class AgentView(HomeAssistantView):
    url = AGENT_PATH
    name = "api:fleet_metrics:agent"
    requires_auth = False

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def get(self, request: web.Request) -> web.StreamResponse:
        """One agent's WebSocket, for as long as it stays connected."""
        return await handle_agent(request, self._hub)
