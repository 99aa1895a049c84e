"""``fleet-metrics``: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import __version__
from .core import config as config_module
from .runner import Runner

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fleet-metrics", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the configured sources and outputs")
    run.add_argument("-c", "--config", type=Path, help="TOML config (default: built-in demo)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument("--listen", help='override [prometheus] listen ("host:port", "" to disable)')
    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", type=Path, required=True)
    return parser


def _load(path: Path | None) -> dict[str, Any]:
    if path is None:
        text = resources.files(__package__).joinpath("default_config.toml").read_text("utf-8")
        return config_module.loads(text)
    return config_module.load(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _load(args.config)
        if getattr(args, "listen", None) is not None:
            config = config_module.validate(
                {**config, "prometheus": {**config["prometheus"], "listen": args.listen}}
            )
    except config_module.ConfigError as err:
        print(f"fleet-metrics: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"{args.config}: ok ({len(config['sources'])} sources)")
        return 0
    level = (args.log_level or str(config["log_level"])).upper()
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    runner = Runner(config, config_path=args.config)
    asyncio.run(runner.run_until_stopped())
    return 0
