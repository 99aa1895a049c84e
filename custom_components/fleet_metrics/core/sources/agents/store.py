"""Registered hosts in SQLite (stdlib ``sqlite3``, WAL), shared by the runner and the CLI.

One row per host: name, token hash, when it was created and last rotated, when it was last
seen, its agent version, and the boot_id and last applied seq that let an agent resume after
the runner restarts. The ``hosts`` command writes while the runner runs: WAL lets the
runner's reads go on meanwhile, and ``PRAGMA data_version`` (bumped by every commit of
another connection) tells the runner cheaply when to read the hosts again.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .tokens import hash_token, make_token

HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
BUSY_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created REAL NOT NULL,
    rotated REAL,
    last_seen REAL,
    agent_version TEXT NOT NULL DEFAULT '',
    boot_id TEXT NOT NULL DEFAULT '',
    last_seq INTEGER NOT NULL DEFAULT 0
)
"""


class StoreError(Exception):
    """A host operation that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class HostRecord:
    name: str
    token_hash: str
    created: float
    rotated: float | None = None
    last_seen: float | None = None
    agent_version: str = ""
    boot_id: str = ""
    last_seq: int = 0


@dataclass(frozen=True, slots=True)
class Progress:
    """What a host reached, saved so that a restarted runner resumes where it was."""

    name: str
    boot_id: str
    last_seq: int
    last_seen: float
    agent_version: str


def valid_host_name(name: str) -> bool:
    return HOST_NAME.fullmatch(name) is not None


class HostStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes whenever another connection committed (SQLite's own change counter)."""
        row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def hosts(self) -> dict[str, HostRecord]:
        rows = self._db.execute(
            "SELECT name, token_hash, created, rotated, last_seen, agent_version, boot_id,"
            " last_seq FROM hosts ORDER BY name"
        ).fetchall()
        return {row[0]: HostRecord(*row) for row in rows}

    def add(self, name: str) -> str:
        """Register ``name``; returns its token, which is never stored."""
        if not valid_host_name(name):
            raise StoreError(
                f"invalid host name {name!r}: use letters, digits, '.', '_' or '-' (max 63)"
            )
        token = make_token()
        try:
            self._db.execute(
                "INSERT INTO hosts (name, token_hash, created) VALUES (?, ?, ?)",
                (name, hash_token(token), time.time()),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"host {name!r} exists; use 'hosts rotate {name}'") from None
        return token

    def rotate(self, name: str) -> str:
        """A new token for ``name``; the old one stops working."""
        token = make_token()
        changed = self._db.execute(
            "UPDATE hosts SET token_hash = ?, rotated = ? WHERE name = ?",
            (hash_token(token), time.time(), name),
        ).rowcount
        if not changed:
            raise StoreError(f"no host named {name!r}")
        return token

    def remove(self, name: str) -> None:
        if not self._db.execute("DELETE FROM hosts WHERE name = ?", (name,)).rowcount:
            raise StoreError(f"no host named {name!r}")

    def save_progress(self, progress: Iterable[Progress]) -> None:
        """One transaction for all of them; a removed host's row stays removed."""
        rows = [(p.boot_id, p.last_seq, p.last_seen, p.agent_version, p.name) for p in progress]
        if not rows:
            return
        with self._transaction():
            self._db.executemany(
                "UPDATE hosts SET boot_id = ?, last_seq = ?, last_seen = ?, agent_version = ?"
                " WHERE name = ?",
                rows,
            )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
