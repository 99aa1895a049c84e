"""``fleet-metrics agent -c agent.toml``: the host agent as a process.

Exit codes: 0 after SIGTERM or SIGINT, 2 for a config that must not start (one line on
stderr naming the key), 1 when every server refused the agent for good (another protocol
version). Also runs as ``python -m fleet_metrics.agent -c agent.toml``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from . import __version__, logs
from .core.agent import config as agent_config
from .core.agent.agent import HostAgent
from .core.log_context import LOG_FORMATS, LOG_LEVELS

EXIT_CONFIG = 2
_LOGGER = logging.getLogger(__name__)


def run_agent(config: Path, log_level: str | None, log_format: str | None) -> int:
    """Load ``config``, then run the agent until SIGTERM/SIGINT; the process exit code."""
    try:
        settings = agent_config.load(config, __version__)
    except agent_config.AgentConfigError as err:
        print(f"fleet-metrics agent: config error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_CONFIG
    logs.configure(log_level or settings.log_level, log_format or settings.log_format)
    for warning in settings.warnings:
        _LOGGER.warning("%s", warning)
    with asyncio.Runner() as aio:
        return aio.run(_run_until_stopped(HostAgent(settings, __version__)))


async def _run_until_stopped(agent: HostAgent) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(agent.run())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if running in done:  # every server refused the agent for good
        return running.result()
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    for sig in (signal.SIGTERM, signal.SIGINT):  # a late signal must not spoil the exit
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)
    pending = sum(len(outbox) for outbox in agent.outboxes)
    _LOGGER.info("agent stopped; %d batches were not yet confirmed by a server", pending)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fleet-metrics agent", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, required=True, help="agent TOML config")
    parser.add_argument("--log-level", choices=LOG_LEVELS)
    parser.add_argument("--log-format", choices=LOG_FORMATS)
    args = parser.parse_args(argv)
    return run_agent(args.config, args.log_level, args.log_format)


if __name__ == "__main__":
    sys.exit(main())
