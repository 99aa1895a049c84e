"""``fleet-metrics``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .core.log_context import LOG_FORMATS, LOG_LEVELS

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-metrics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the configured sources and outputs")
    run.add_argument(
        "-c",
        "--config",
        type=Path,
        help="TOML config (default: one synthetic source, no network; see `demo`)",
    )
    run.add_argument("--log-level", choices=LOG_LEVELS)
    run.add_argument("--log-format", choices=LOG_FORMATS, help="stderr as text or JSON lines")
    run.add_argument("--listen", help='override [prometheus] listen ("host:port", "" to disable)')
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", type=Path, required=True)
    agent = commands.add_parser("agent", help="run the host agent (push this host's metrics)")
    agent.add_argument("-c", "--config", type=Path, required=True, help="agent TOML config")
    agent.add_argument("--log-level", choices=LOG_LEVELS)
    agent.add_argument("--log-format", choices=LOG_FORMATS)
    demo = commands.add_parser(
        "demo", help="a simulated fleet (embedded broker) and the runner reading it"
    )
    demo.add_argument(
        "--listen",
        type=_demo_listen,
        default="127.0.0.1:9847",
        help='/metrics and /api/agent as "host:port" (default 127.0.0.1:9847)',
    )
    _simulator_arguments(demo, broker_port=0)
    simulate = commands.add_parser(
        "simulate", help="the simulated fleet alone, for Home Assistant's config flows"
    )
    simulate.add_argument(
        "--bind",
        default="127.0.0.1",
        help="address the embedded broker and the OpenDTU listen on (0.0.0.0: every one)",
    )
    _simulator_arguments(simulate, broker_port=1883)
    simulate.add_argument("--dtu-port", type=_port(0), default=0, help="OpenDTU port (0: free)")
    simulate.add_argument("--agent-url", default="", help=f"e.g. ws://HA:8123{HA_AGENT_PATH}")
    simulate.add_argument("--agent-token", default="", help="the token HA showed for this host")
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


HA_AGENT_PATH = "/api/fleet_metrics/agent"


def _simulator_arguments(parser: argparse.ArgumentParser, broker_port: int) -> None:
    """The options ``demo`` and ``simulate`` share."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--broker", type=_broker, help="an external MQTT broker, host:port")
    where.add_argument(
        "--broker-port",
        type=_port(0),
        default=broker_port,
        help=f"port of the embedded broker (0: a free one; default {broker_port})",
    )
    parser.add_argument(
        "--duration",
        type=_seconds,
        default=0.0,
        help="stop after this many seconds (default 0: until SIGTERM or Ctrl-C)",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS)
    parser.add_argument("--log-format", choices=LOG_FORMATS)


def _port(lowest: int) -> Any:
    def port(text: str) -> int:
        if not text.isdigit() or not lowest <= int(text) <= 65535:
            raise argparse.ArgumentTypeError(f"expected a port from {lowest} to 65535")
        return int(text)

    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected seconds, 0 or more")
    return value


def _broker(text: str) -> Any:
    from .simulators.broker import parse_address

    try:
        return parse_address(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _demo_listen(text: str) -> str:
    import voluptuous as vol

    from .core.validators import listen_address

    if text == "":
        raise argparse.ArgumentTypeError("the demo needs it: its host agent reports there")
    try:
        return str(listen_address(text))
    except vol.Invalid as err:
        raise argparse.ArgumentTypeError(err.msg) from None


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
    if args.command in ("demo", "simulate"):
        return _simulated(args)
    return _run(args)


def _simulated(args: argparse.Namespace) -> int:
    """``demo`` and ``simulate``: 0 after SIGTERM/SIGINT or ``--duration``; 2 when a port
    cannot be had."""
    from . import logs

    failure: type[Exception]
    if args.command == "demo":
        from .demo import DemoOptions, run_demo
        from .runner import StartError

        failure = StartError
        main: Coroutine[Any, Any, int] = run_demo(
            DemoOptions(
                listen=args.listen,
                broker=args.broker,
                broker_port=args.broker_port,
                duration=args.duration,
            )
        )
    else:
        from .simulate import SimulateError, SimulateOptions, run_simulate

        failure = SimulateError
        main = run_simulate(
            SimulateOptions(
                bind=args.bind,
                broker=args.broker,
                broker_port=args.broker_port,
                dtu_port=args.dtu_port,
                agent_url=args.agent_url,
                agent_token=args.agent_token,
                duration=args.duration,
            ),
            sys.stdout,
        )
    logs.configure(args.log_level or "info", args.log_format or "text")
    try:
        with asyncio.Runner() as aio:
            try:
                code = aio.run(main)
            finally:
                _ignore_stop_signals(aio.get_loop())
    except failure as err:
        return _fail("cannot start", err)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        _release_stdout()
    return code


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
