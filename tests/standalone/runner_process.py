"""Runs ``fleet-metrics`` as a real subprocess and collects what it prints.

Run as a module (``python -m tests.standalone.runner_process run ...``) it is the same command
with one more source kind, ``faulty``, whose construction fails on request: the only way to
show, in a real process, what happens to a config that validates but cannot be built.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import voluptuous as vol
from prometheus_client.parser import text_string_to_metric_families

LISTEN_RE = re.compile(r"serving /metrics and /healthz on [\d.]+:(\d+)")


class RunnerProcess:
    def __init__(self, *args: str, module: str = "fleet_metrics") -> None:
        self.args = args
        self.module = module
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self) -> RunnerProcess:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout and self._proc.stderr
        self._readers = [
            asyncio.create_task(self._read(self._proc.stdout, self.stdout_lines)),
            asyncio.create_task(self._read(self._proc.stderr, self.stderr_lines)),
        ]
        return self

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        async for raw in stream:
            line = raw.decode().rstrip("\n")
            into.append(line)
            if self.port is None and (match := LISTEN_RE.search(line)):
                self.port = int(match.group(1))

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        assert self._proc is not None
        return self._proc.returncode

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        assert callable(predicate)
        async with asyncio.timeout(timeout):
            while not predicate():
                if self._proc is not None and self._proc.returncode is not None:
                    raise AssertionError(f"runner exited early:\n{self.stderr}")
                await asyncio.sleep(0.05)

    async def get(self, path: str) -> tuple[int, str]:
        await self.wait_for(lambda: self.port is not None)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            return response.status, await response.text()

    def signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        self._proc.send_signal(sig)

    async def wait(self, timeout: float = 10.0) -> int:
        assert self._proc is not None
        async with asyncio.timeout(timeout):
            code = await self._proc.wait()
            await asyncio.gather(*self._readers)
        return code

    async def kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


def write_config(path: Path, sources: str, flush: float = 0.2) -> Path:
    path.write_text(
        f"""
[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
output = "stdout"
flush_interval = {flush}

{sources}
""",
        encoding="utf-8",
    )
    return path


def metric_value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture
async def processes() -> AsyncGenerator[list[RunnerProcess]]:
    started: list[RunnerProcess] = []
    yield started
    for process in started:
        await process.kill()


WITH_FAULTY_KIND = "tests.standalone.runner_process"


def _main_with_faulty_kind() -> int:
    # The runner's own modules (fleet_metrics.core), not custom_components: no HA import.
    from fleet_metrics.cli import main
    from fleet_metrics.core.source import Emit, Source, SourceContext
    from fleet_metrics.core.sources import KINDS, SourceKind

    class FaultySource(Source):
        """Idles; refuses to be constructed when its config says ``fail = true``."""

        kind = "faulty"

        def __init__(
            self, name: str, config: Mapping[str, Any], context: SourceContext | None = None
        ) -> None:
            super().__init__(name, config, context)
            if config["fail"]:
                raise ValueError("this faulty source refuses to be built")

        async def run(self, emit: Emit) -> None:
            await asyncio.Event().wait()

    KINDS["faulty"] = SourceKind(FaultySource, {vol.Optional("fail", default=False): bool})
    return main()


if __name__ == "__main__":
    raise SystemExit(_main_with_faulty_kind())
