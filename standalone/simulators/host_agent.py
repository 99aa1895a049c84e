"""This machine as a host of the fleet: the real host agent, registered for the demo.

Nothing is simulated here but the registration: the demo adds the host to a hosts database
of its own (a temporary folder), and runs the same ``HostAgent`` that ``fleet-metrics agent``
runs, on short collector intervals so that the first minute shows every tier.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from .. import __version__
from ..core.agent import config as agent_config
from ..core.agent.agent import HostAgent
from ..core.sources.agents.store import HostStore, valid_host_name

# Collector intervals (fast, medium, slow tiers) in seconds: the agent's minimum is 1.
DEMO_INTERVALS = {"fast": 5.0, "medium": 15.0, "slow": 60.0}


def host_name() -> str:
    """This machine's name as a host name the hosts database accepts."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:63]
    return name if name and valid_host_name(name) else "demo-host"


def register(database: Path, name: str) -> str:
    """Add ``name`` to the hosts database at ``database``; returns its token."""
    store = HostStore(database)
    try:
        return store.add(name)
    finally:
        store.close()


def host_agent(url: str, token: str, name: str) -> HostAgent:
    """The agent for this machine, reporting to the one server at ``url``.

    Raises AgentConfigError for a URL or token the agent would refuse (the message names it).
    """
    settings = agent_config.validate(
        {
            "host": name,
            "servers": [{"url": url, "token": token}],
            "intervals": dict(DEMO_INTERVALS),
        },
        __version__,
    )
    return HostAgent(settings, __version__)
