"""``fleet-metrics hosts add|list|rotate|remove``: the agents source's hosts, from the shell.

Works while the runner runs: both open the same SQLite database (WAL), and the runner
notices every change within its ``poll_interval`` (a removed or rotated host's live
connection is cut then). A token is printed once, as the last line of stdout, so that a
script can take it with ``tail -n 1``; only its hash is stored.
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .core import config as config_module
from .core.sources.agents.store import HostStore, StoreError
from .core.validators import split_listen

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
AGENT_PATH = "/api/agent"


def agents_config(config: dict[str, Any]) -> dict[str, Any]:
    for source in config["sources"]:
        if source["kind"] == "agents":
            found: dict[str, Any] = source
            return found
    raise config_module.ConfigError('sources: no [[sources]] with kind = "agents"')


def server_url(config: dict[str, Any]) -> str:
    listen = config["prometheus"]["listen"]
    if not listen:
        return f"ws://<this server>:<port>{AGENT_PATH}"
    host, port = split_listen(listen)
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"ws://{host}:{port}{AGENT_PATH}"


def _agent_toml(name: str, url: str) -> str:
    return (
        f"# agent.toml for {name}: save the token (the last line below) in the token file\n"
        "# on that host, readable only by the agent (chmod 600); it is not shown again.\n"
        f'host = "{name}"\n'
        "\n"
        "[[servers]]\n"
        f'url = "{url}"\n'
        'token_file = "/etc/fleet-metrics/agent.token"\n'
    )


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_hosts(config_path: Path, action: str, name: str | None, out: TextIO = sys.stdout) -> int:
    try:
        config = config_module.load(config_path)
        source = agents_config(config)
    except config_module.ConfigError as err:
        print(f"fleet-metrics: config error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        store = HostStore(source["database"])
    except Exception as err:  # sqlite3.Error, OSError: one line, the path named
        print(f"fleet-metrics: cannot open {source['database']}: {err}", file=sys.stderr)
        return EXIT_FAILED
    try:
        if action == "list":
            _list(store, source["grace"], out)
        elif action == "add":
            assert name is not None
            token = store.add(name)
            out.write(_agent_toml(name, server_url(config)))
            out.write(f"{token}\n")
        elif action == "rotate":
            assert name is not None
            token = store.rotate(name)
            out.write(f"# new token for {name}; the old one no longer works\n{token}\n")
        elif action == "remove":
            assert name is not None
            store.remove(name)
            out.write(f"removed {name}; its agent is disconnected\n")
    except StoreError as err:
        print(f"fleet-metrics: {err}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        store.close()
    return EXIT_OK


def _list(store: HostStore, grace: float, out: TextIO) -> None:
    """``online``: seen within the grace period (this is another process than the runner,
    so the database's last seen is what there is to go by)."""
    rows = [("NAME", "ONLINE", "LAST SEEN", "AGENT VERSION")]
    now = time.time()
    for record in store.hosts().values():
        online = record.last_seen is not None and now - record.last_seen <= grace
        rows.append(
            (record.name, "yes" if online else "no", _when(record.last_seen), record.agent_version)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        out.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)))
        out.write(f"  {row[3]}".rstrip() + "\n")
