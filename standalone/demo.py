"""``fleet-metrics demo``: a simulated fleet and the runner reading it, in one process.

The embedded broker (or ``--broker``), the Tasmota, OpenDTU and TickrMeter simulators and the
runner start together; this machine's host agent reports to the runner's ``/api/agent`` with
a token registered in a temporary hosts database. ``/metrics`` and line protocol on stdout
are the runner's as usual; a status line on stderr every few seconds says what flows.

The lifecycle is the runner's own (start, then stop with ``shutdown_timeout``), driven from
here so that the agent disconnects before the runner's server closes: a demo that is asked
to stop logs no lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import config as config_module
from .core.validators import split_listen
from .runner import EXIT_FAILED, Runner, StartError
from .simulators.broker import BrokerAddress
from .simulators.fleet import FleetOptions, SimulatedFleet
from .simulators.host_agent import host_agent, host_name, register
from .simulators.tasks import cancel_and_wait

_LOGGER = logging.getLogger(__name__)

STATUS_INTERVAL = 5.0
AGENT_PATH = "/api/agent"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    listen: str = config_module.DEFAULT_LISTEN
    broker: BrokerAddress | None = None  # external; None embeds one
    broker_port: int = 0
    duration: float = 0.0  # 0: until SIGTERM/SIGINT
    status_interval: float = STATUS_INTERVAL


def demo_config(broker: BrokerAddress, dtu_url: str, database: Path, listen: str) -> dict[str, Any]:
    """The runner's config for the simulated fleet: every kind of source, short intervals
    so that the first minute shows everything. ConfigError for a bad ``listen``."""
    return config_module.validate(
        {
            "prometheus": {"listen": listen, "ttl": 120},
            "line_protocol": {"output": "stdout", "flush_interval": 5},
            "brokers": {"demo": {"host": broker.host, "port": broker.port}},
            "sources": [
                {"kind": "tasmota", "name": "tasmota", "broker": "demo"},
                {"kind": "opendtu", "name": "solar", "url": dtu_url, "interval": 5},
                {
                    "kind": "tickrmeter",
                    "name": "tickrmeter",
                    "broker": "demo",
                    "tick": 2,
                    "request_timeout": 10,
                    "window": 120,
                },
                {"kind": "agents", "name": "hosts", "database": str(database), "grace": 30},
            ],
        }
    )


def status_line(runner: Runner, previous: int, seconds: float) -> tuple[str, int]:
    """One short line: sources producing, messages (and their rate), samples, errors;
    returns it with the message count for the next call."""
    entries = runner.supervisor.entries.values()
    producing = sum(1 for e in entries if e.source.stats.last_sample_monotonic is not None)
    messages = sum(e.source.stats.messages for e in entries)
    samples = sum(e.source.stats.samples for e in entries)
    errors = sum(e.source.stats.parse_errors for e in entries)
    restarts = sum(e.restarts for e in entries)
    rate = (messages - previous) / seconds if seconds > 0 else 0.0
    line = (
        f"status: {producing}/{len(entries)} sources producing, {messages} messages "
        f"({rate:.0f}/s), {samples} samples, {errors} rejected, {restarts} restarts"
    )
    return line, messages


def agent_url(listen: str, port: int) -> str:
    """The runner's agent endpoint as this machine reaches it."""
    host, _ = split_listen(listen)
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"ws://{shown}:{port}{AGENT_PATH}"


async def _status_forever(runner: Runner, interval: float) -> None:
    previous, last = 0, time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        line, previous = status_line(runner, previous, now - last)
        last = now
        _LOGGER.info("%s", line)


async def _agent_when_ready(runner: Runner, token: str, name: str, listen: str) -> None:
    """This machine's agent, once the runner's agents source accepts connections."""
    # The source offers no event to wait on: polled for the moment it takes to start.
    while (source := runner.agents_source()) is None or not source.ready:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert runner.bound_port is not None
    await host_agent(agent_url(listen, runner.bound_port), token, name).run()


async def run_demo(options: DemoOptions) -> int:
    """Until SIGTERM/SIGINT or ``duration``; the exit code. StartError (nothing left
    running) when a port cannot be had; ConfigError for a bad ``listen``."""
    fleet = SimulatedFleet(FleetOptions(broker=options.broker, broker_port=options.broker_port))
    try:
        await fleet.start(devices=False)  # the devices connect once the runner is up
    except Exception as err:
        raise StartError(f"cannot start the simulated fleet: {err}") from err
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-metrics-demo-") as folder:
            return await _run(options, fleet, Path(folder))
    finally:
        await fleet.stop()


async def _run(options: DemoOptions, fleet: SimulatedFleet, folder: Path) -> int:
    assert fleet.broker_address is not None
    database = folder / "hosts.sqlite"
    name = host_name()
    token = register(database, name)
    runner = Runner(demo_config(fleet.broker_address, fleet.dtu_url, database, options.listen))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            _LOGGER.warning("%s: already stopping", sig.name)
        else:
            _LOGGER.info("%s: stopping", sig.name)
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    loop.add_signal_handler(signal.SIGHUP, _LOGGER.info, "SIGHUP: the demo has no config to reload")
    await runner.start()
    fleet.start_devices()
    _LOGGER.info(
        "demo: /metrics on http://%s:%s/metrics, broker %s, OpenDTU %s, host agent %s",
        split_listen(options.listen)[0] or "0.0.0.0",
        runner.bound_port,
        fleet.broker_address,
        fleet.dtu_url,
        name,
    )
    helpers = [
        asyncio.create_task(_agent_when_ready(runner, token, name, options.listen), name="agent"),
        asyncio.create_task(_status_forever(runner, options.status_interval), name="status"),
    ]
    try:
        await _wait_for_stop(runner, stop, options.duration)
    finally:
        await cancel_and_wait(helpers)  # the agent first: it leaves before the server closes
    return await _stop_runner(runner)


async def _wait_for_stop(runner: Runner, stop: asyncio.Event, duration: float) -> None:
    """Until a signal, ``duration`` seconds, or the runner failing (its stdout closed)."""
    deadline = time.monotonic() + duration if duration > 0 else None
    while not stop.is_set() and runner.exit_code == 0:
        if deadline is not None and time.monotonic() >= deadline:
            _LOGGER.info("demo: %g s are over, stopping", duration)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def _stop_runner(runner: Runner) -> int:
    """The runner's own shutdown, bounded by its ``shutdown_timeout``."""
    timeout = float(runner.config["shutdown_timeout"])
    clean = False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            clean = await runner.stop(flush_seconds=max(0.1, timeout - 0.5))
    if not clean:
        _LOGGER.error("shutdown did not finish within %g s", timeout)
        return EXIT_FAILED
    return runner.exit_code
