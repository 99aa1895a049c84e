"""``fleet-metrics``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .logs import LOG_FORMATS

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-metrics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the configured sources and outputs")
    run.add_argument("-c", "--config", type=Path, help="TOML config (default: built-in demo)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", choices=LOG_FORMATS, help="stderr as text or JSON lines")
    run.add_argument("--listen", help='override [prometheus] listen ("host:port", "" to disable)')
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", type=Path, required=True)
    agent = commands.add_parser("agent", help="run the host agent (push this host's metrics)")
    agent.add_argument("-c", "--config", type=Path, required=True, help="agent TOML config")
    agent.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    agent.add_argument("--log-format", choices=LOG_FORMATS)
    hosts = commands.add_parser("hosts", help="register and manage the hosts of host agents")
    actions = hosts.add_subparsers(dest="action", required=True)
    for action, text in (
        ("add", "register a host; prints its agent config and, last, its token"),
        ("rotate", "give a host a new token; the old one stops working"),
        ("remove", "revoke a host; its agent is disconnected"),
        ("list", "hosts with online, last seen and agent version"),
    ):
        sub = actions.add_parser(action, help=text)
        if action != "list":
            sub.add_argument("name")
        sub.add_argument("-c", "--config", type=Path, required=True)
    return parser


def _load(path: Path | None) -> dict[str, Any]:
    from .core import config as config_module

    if path is None:
        text = resources.files(__package__).joinpath("default_config.toml").read_text("utf-8")
        return config_module.loads(text)
    return config_module.load(path)


def _fail(kind: str, err: Exception) -> int:
    """One line on stderr, whatever the message holds."""
    print(f"fleet-metrics: {kind}: {' '.join(str(err).split())}", file=sys.stderr)
    return EXIT_CONFIG


def _release_stdout() -> None:
    """Flush stdout now; if its reader is gone, point it at /dev/null so that the
    interpreter's own flush at exit does not print a BrokenPipeError."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _ignore_stop_signals(loop: asyncio.AbstractEventLoop) -> None:
    """The runner is done: a late SIGTERM or SIGINT must not turn its exit code into a kill
    or a KeyboardInterrupt while the loop winds down."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "agent":
        from .agent import run_agent  # the agent needs none of the runner's imports

        return run_agent(args.config, args.log_level, args.log_format)
    if args.command == "hosts":
        from .hosts import run_hosts

        return run_hosts(args.config, args.action, getattr(args, "name", None))
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """``run`` and ``check-config``."""
    # Imported here: the parser and the agent must not pay for the runner.
    from . import logs
    from .core import config as config_module
    from .runner import BuildError, Runner, StartError

    try:
        config = _load(args.config)
        if getattr(args, "listen", None) is not None:
            config = config_module.validate(
                {**config, "prometheus": {**config["prometheus"], "listen": args.listen}}
            )
    except config_module.ConfigError as err:
        return _fail("config error", err)
    if args.command == "check-config":
        print(f"{args.config}: ok ({len(config['sources'])} sources)")
        return 0
    logs.configure(
        args.log_level or str(config["log_level"]), args.log_format or str(config["log_format"])
    )
    try:
        with asyncio.Runner() as aio:
            try:
                code = aio.run(Runner(config, config_path=args.config).run_until_stopped())
            finally:
                _ignore_stop_signals(aio.get_loop())
    except (StartError, BuildError) as err:
        return _fail("cannot start", err)
    except KeyboardInterrupt:  # Ctrl-C before the runner's own handler was installed
        return EXIT_INTERRUPTED
    finally:
        _release_stdout()
    return code
