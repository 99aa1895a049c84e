"""A real InfluxDB 1.x (Debian package ``influxdb``) on free loopback ports, one per session.

influxd takes seconds to start, so the session shares one server and each test batch works
in a database of its own (``fresh_database``). Every port influxd would open (RPC, HTTP) is a
free loopback port; data, meta and WAL live in a temporary directory; usage reporting is off.
The client side is blocking ``urllib``: hypothesis tests are synchronous, and a blocking
call keeps the fixture free of event loop scopes.

``influxd_auth`` is a second server with ``auth-enabled``: its admin user is created
through the HTTP API (allowed while no user exists), and ``writer`` may only write.
"""

from __future__ import annotations

import itertools
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_socket  # type: ignore[import-untyped]

INFLUXD = shutil.which("influxd") or "/usr/bin/influxd"
HAVE_INFLUXD = Path(INFLUXD).exists()
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


ADMIN = ("admin", "admin-secret")


class Influxd:
    def __init__(self, workdir: Path, auth: bool = False) -> None:
        self.workdir = workdir
        self.auth = auth
        self.http_port = free_port()
        self.rpc_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def write_url(self, database: str) -> str:
        return f"{self.url}/write?db={urllib.parse.quote(database)}"

    def _write_config(self) -> Path:
        root = self.workdir
        config = root / "influxdb.conf"
        config.write_text(
            f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{root / "meta"}"
  logging-enabled = false
[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.http_port}"
  auth-enabled = {str(self.auth).lower()}
  log-enabled = false
  pprof-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""
        )
        return config

    def start(self) -> None:
        if not HAVE_INFLUXD:
            pytest.fail("influxd is missing: .ci/run installs the Debian package influxdb")
        config = self._write_config()
        self._log = (self.workdir / "influxd.log").open("wb")
        self._proc = subprocess.Popen(
            [INFLUXD, "-config", str(config)], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (self.workdir / "influxd.log").read_text(errors="replace")
                pytest.fail(f"influxd exited with {self._proc.returncode}:\n{log[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 204:
                        if self.auth:
                            self._create_admin()
                        return
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"influxd did not answer /ping within {START_TIMEOUT} s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        self._log.close()

    def _create_admin(self) -> None:
        """The first user of an auth-enabled server, created without credentials."""
        name, password = ADMIN
        status, text = self._request(
            "/query",
            {"q": f"CREATE USER {name} WITH PASSWORD '{password}' WITH ALL PRIVILEGES"},
            b"",
            admin=False,
        )
        assert status == 200 and '"error"' not in text, text

    def add_writer(self, database: str, name: str, password: str) -> None:
        """A user who may write to ``database`` and nothing else."""
        self.query(f"CREATE USER {name} WITH PASSWORD '{password}'")
        self.query(f'GRANT WRITE ON "{database}" TO {name}')

    def _request(
        self, path: str, params: dict[str, str], body: bytes | None, admin: bool = True
    ) -> tuple[int, str]:
        if self.auth and admin:
            params = {**params, "u": ADMIN[0], "p": ADMIN[1]}
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body if body is not None else b"")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def query(self, q: str, database: str = "") -> Any:
        """The JSON answer of ``/query``; ``epoch=ns`` so times compare as integers."""
        params = {"q": q, "epoch": "ns"}
        if database:
            params["db"] = database
        status, text = self._request("/query", params, b"")
        assert status == 200, text
        return json.loads(text)

    def fresh_database(self) -> str:
        name = f"t{next(self._names)}"
        self.query(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')

    def write(self, database: str, body: bytes) -> tuple[int, str]:
        """POST line protocol; (status, body of the answer)."""
        return self._request("/write", {"db": database}, body)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    # Session fixtures run before the per-test opt-in to loopback sockets (tests/conftest.py).
    pytest_socket.enable_socket()
    server = Influxd(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxd_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    pytest_socket.enable_socket()
    server = Influxd(tmp_path_factory.mktemp("influxd_auth"), auth=True)
    server.start()
    yield server
    server.stop()
