"""A real Mosquitto broker on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path

import aiomqtt
import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HAVE_MOSQUITTO = Path(MOSQUITTO).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mosquitto:
    def __init__(
        self, workdir: Path, users: dict[str, str] | None = None, tls: bool = False
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.users = users or {}
        self.tls = tls
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
        config.write_text("\n".join(lines) + "\n")
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


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncGenerator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    await broker.start()
    yield broker
    await broker.stop()
