"""A real Mosquitto broker on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path

import aiomqtt
import pytest

from custom_components.fleet_metrics.core.mqtt import fast_path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HAVE_MOSQUITTO = Path(MOSQUITTO).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        users: dict[str, str] | None = None,
        tls: bool = False,
        config: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.users = users or {}
        self.tls = tls
        self.config = list(config)  # extra lines for mosquitto.conf
        self._proc: asyncio.subprocess.Process | None = None
        if tls:
            make_certificates(workdir)

    @property
    def settings(self) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port}

    def _write_config(self) -> Path:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            # As root Mosquitto drops to user "mosquitto", who cannot read pytest's tmp dirs.
            lines.append("user root")
        if self.users:
            passwords = self.workdir / "passwords"
            for index, (user, password) in enumerate(self.users.items()):
                create = ["-c"] if index == 0 else []
                subprocess.run(
                    ["mosquitto_passwd", *create, "-b", str(passwords), user, password],
                    check=True,
                )
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [
                f"cafile {self.workdir / 'ca.crt'}",
                f"certfile {self.workdir / 'server.crt'}",
                f"keyfile {self.workdir / 'server.key'}",
                "require_certificate true",
            ]
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines + self.config) + "\n")
        return config

    async def start(self) -> None:
        if not HAVE_MOSQUITTO:
            pytest.fail("mosquitto is missing: .ci/run installs the Debian package mosquitto")
        config = self._write_config()
        self._proc = await asyncio.create_subprocess_exec(
            MOSQUITTO, "-c", str(config), stderr=asyncio.subprocess.DEVNULL
        )
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            await self._proc.wait()
        self._proc = None

    async def publish(
        self, messages: list[tuple[str, bytes | str]], retain: bool = False, **auth: str
    ) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, **auth) as client:
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1, retain=retain)


def make_certificates(workdir: Path) -> None:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate.

    Python 3.13 verifies strictly, so the CA carries key usage and the leaves key identifiers.
    """

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    key = ["-newkey", "rsa:2048", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    openssl("req", "-x509", *key, "-days", "2", "-subj", "/CN=test-ca", *ca_ext,
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    leaf = "authorityKeyIdentifier=keyid,issuer\nsubjectKeyIdentifier=hash\n"
    (workdir / "server.ext").write_text(leaf + "subjectAltName=IP:127.0.0.1\n")
    (workdir / "client.ext").write_text(leaf)
    for name in ("server", "client"):
        openssl("req", *key, "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt")  # fmt: skip


def refusing_subscriptions(workdir: Path, patterns: Sequence[str]) -> list[str]:
    """mosquitto.conf lines that make the broker refuse anonymous subscriptions to ``patterns``.

    Mosquitto's ACL file only filters deliveries (the SUBACK still grants); its dynamic
    security plugin answers a denied SUBSCRIBE with 0x80 (MQTT 3.1.1) or 0x87 (MQTT 5).
    """
    plugins = glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")
    if not plugins:
        pytest.fail("mosquitto_dynamic_security.so is missing (Debian package mosquitto)")
    acls = [
        {"acltype": "subscribePattern", "topic": p, "priority": 10, "allow": False}
        for p in patterns
    ]
    access = ("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe")
    security = {
        "defaultACLAccess": dict.fromkeys(access, True),
        "clients": [],
        "groups": [{"groupname": "anonymous", "roles": [{"rolename": "refused"}]}],
        "anonymousGroup": "anonymous",
        "roles": [{"rolename": "refused", "acls": acls}],
    }
    path = workdir / "dynamic-security.json"
    path.write_text(json.dumps(security))
    return [f"plugin {plugins[0]}", f"plugin_opt_config_file {path}"]


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on a free port that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


class DroppingProxy:
    """Forwards MQTT between clients and a broker, but drops SUBSCRIBEs naming ``silenced``.

    The broker never sees those subscriptions, so they are never answered: a subscribe
    that times out while the connection and every other subscription stay healthy.
    """

    def __init__(self, broker_port: int, silenced: str) -> None:
        self.broker_port = broker_port
        self.silenced = silenced.encode()
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self._writers += [client_w, broker_w]
        upstream = asyncio.ensure_future(self._upstream(client_r, broker_w))
        try:
            while data := await broker_r.read(65536):
                client_w.write(data)
                await client_w.drain()
        except OSError:
            pass
        finally:
            upstream.cancel()
            client_w.close()

    async def _upstream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, OSError):
            while True:
                header = await reader.readexactly(1)
                length, multiplier, raw = 0, 1, b""
                while True:
                    byte = await reader.readexactly(1)
                    raw += byte
                    length += (byte[0] & 0x7F) * multiplier
                    multiplier *= 128
                    if not byte[0] & 0x80:
                        break
                body = await reader.readexactly(length)
                if header[0] >> 4 == 8 and self.silenced in body:  # SUBSCRIBE
                    self.dropped += 1
                    continue
                writer.write(header + raw + body)
                await writer.drain()
        writer.close()


@pytest.fixture(params=["fast", "public"])
def mqtt_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once on the fast path and once on aiomqtt's public message iterator."""
    monkeypatch.setattr(fast_path, "ENABLED", request.param == "fast")
    return str(request.param)


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncGenerator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    await broker.start()
    yield broker
    await broker.stop()
