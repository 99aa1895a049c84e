"""``fleet-metrics simulate``: the simulated fleet alone, for Home Assistant to read.

Starts the broker (or uses ``--broker``) and the simulators, prints what to type into Home
Assistant's config flows, and runs until SIGTERM/SIGINT (or ``--duration``). Home Assistant
creates a host's token in its own "Host agents" flow: given ``--agent-url`` and
``--agent-token``, this machine's agent reports there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from dataclasses import dataclass
from typing import TextIO

from .simulators.broker import BrokerAddress
from .simulators.fleet import FleetOptions, SimulatedFleet
from .simulators.host_agent import host_agent, host_name
from .simulators.tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

HA_AGENT_PATH = "/api/fleet_metrics/agent"
STATUS_INTERVAL = 5.0


class SimulateError(Exception):
    """The fleet cannot start (a port is taken) or the agent settings are refused."""


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    bind: str = "127.0.0.1"
    broker: BrokerAddress | None = None
    broker_port: int = 1883
    dtu_port: int = 0
    agent_url: str = ""
    agent_token: str = ""
    duration: float = 0.0
    status_interval: float = STATUS_INTERVAL


def _reachable(host: str) -> str:
    """The address to type into Home Assistant for a server bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):
        return socket.getfqdn()
    return host


def instructions(fleet: SimulatedFleet, options: SimulateOptions, name: str) -> str:
    """What to enter in each of Home Assistant's config flows."""
    broker = fleet.broker_address
    assert broker is not None
    broker_host = _reachable(broker.host) if options.broker is None else broker.host
    dtu = fleet.dtu_url
    if options.bind in ("0.0.0.0", "::"):
        dtu = dtu.replace(f"//{options.bind}:", f"//{_reachable(options.bind)}:", 1)
        dtu = dtu.replace("//[::]:", f"//{_reachable(options.bind)}:", 1)
    lines = [
        "Simulated fleet running. In Home Assistant: Settings > Devices & services >",
        "Add integration > Fleet Metrics, then once per kind:",
        f"  Tasmota devices:  host {broker_host}, port {broker.port}, "
        "no username or password, discovery prefix tasmota/discovery",
        f"  TickrMeter fleet: host {broker_host}, port {broker.port}, "
        "no username or password, default topics",
        f"  OpenDTU:          URL {dtu}, no password",
    ]
    if options.agent_token:
        lines.append(f"  Host agents:      this machine reports to {options.agent_url} as {name}")
    else:
        lines += [
            f"  Host agents:      add the entry, add a host named {name} under it, copy the",
            "                    token it shows, then restart this command with",
            f"                    --agent-token TOKEN --agent-url ws://HA:8123{HA_AGENT_PATH}",
            "                    (or skip this kind)",
        ]
    if options.bind == "127.0.0.1" and options.broker is None:
        lines.append(
            "127.0.0.1 is this machine only: for Home Assistant on another machine, "
            "start with --bind 0.0.0.0."
        )
    return "\n".join(lines) + "\n"


async def run_simulate(options: SimulateOptions, out: TextIO) -> int:
    """Until SIGTERM/SIGINT or ``duration``; SimulateError when the fleet cannot start."""
    agent = None
    name = host_name()
    if options.agent_token or options.agent_url:
        if not (options.agent_token and options.agent_url):
            raise SimulateError("--agent-url and --agent-token go together")
        from .core.agent.config import AgentConfigError

        try:
            agent = host_agent(options.agent_url, options.agent_token, name)
        except AgentConfigError as err:
            raise SimulateError(f"host agent: {err}") from err
    fleet = SimulatedFleet(
        FleetOptions(
            broker=options.broker,
            broker_host=options.bind,
            broker_port=options.broker_port,
            http_host=options.bind,
            dtu_port=options.dtu_port,
        )
    )
    try:
        await fleet.start()
    except Exception as err:
        hint = " (try --broker-port 0 for a free port)" if options.broker is None else ""
        raise SimulateError(f"cannot start the simulated fleet: {err}{hint}") from err
    tasks: list[asyncio.Task[object]] = []
    try:
        out.write(instructions(fleet, options, name))
        out.flush()
        if agent is not None:
            tasks.append(asyncio.create_task(agent.run(), name="agent"))
        tasks.append(asyncio.create_task(_status_forever(fleet, options.status_interval)))
        await _until_stopped(options.duration)
    finally:
        await cancel_and_wait(tasks)
        await fleet.stop()
    return 0


async def _status_forever(fleet: SimulatedFleet, interval: float) -> None:
    previous, last = 0, time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        sent = fleet.published
        rate = (sent - previous) / (now - last)
        previous, last = sent, now
        _LOGGER.info(
            "status: %d messages sent (%.0f/s), %d OpenDTU requests answered",
            sent,
            rate,
            fleet.opendtu.requests,
        )


async def _until_stopped(duration: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        _LOGGER.info("%s: stopping", sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        if duration > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        else:
            await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)  # a late signal must not spoil the exit
