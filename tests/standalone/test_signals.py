"""SIGHUP, SIGTERM and SIGINT against the real command and real servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from fleet_metrics.runner import STDOUT_CLOSED

from tests.core.lp_reference_parser import parse_line
from tests.mosquitto import Mosquitto

from .runner_process import WITH_FAULTY_KIND, RunnerProcess, metric_value, write_config

# What a clean exit never prints.
NOISE = (
    "Traceback",
    "KeyboardInterrupt",
    "Unclosed client session",
    "Unclosed connector",
    "Task was destroyed",
    "never retrieved",
    "Exception ignored",
)


def assert_quiet(runner: RunnerProcess) -> None:
    for noise in NOISE:
        assert noise not in runner.stderr, runner.stderr


def demo(name: str, interval: float = 0.05) -> str:
    return f'[[sources]]\nkind = "demo"\nname = "{name}"\ninterval = {interval}\n'


def faulty(name: str, fail: bool) -> str:
    return f'[[sources]]\nkind = "faulty"\nname = "{name}"\nfail = {str(fail).lower()}\n'


def lines_of(runner: RunnerProcess, source: str) -> int:
    return sum(1 for line in runner.stdout_lines if f"source={source}" in line)


async def reload(runner: RunnerProcess, until: str) -> None:
    count = runner.stderr.count(until)
    runner.signal(signal.SIGHUP)
    await runner.wait_for(lambda: runner.stderr.count(until) > count)


async def test_sighup_builds_every_new_source_before_stopping_any(
    tmp_path: Path, processes: list[RunnerProcess]
) -> None:
    config = write_config(tmp_path / "config.toml", demo("a") + demo("b"), flush=0.05)
    runner = await RunnerProcess("run", "-c", str(config), module=WITH_FAULTY_KIND).start()
    processes.append(runner)
    await runner.wait_for(lambda: lines_of(runner, "a") > 0 and lines_of(runner, "b") > 0)

    # "a" changes and "c" cannot be built: the whole reload is refused, "a" never stops.
    write_config(config, demo("a", 0.1) + demo("b") + faulty("c", fail=True), flush=0.05)
    await reload(runner, "reload refused")
    assert (
        "reload refused, keeping the running config: sources[2] (c): cannot be built: "
        "this faulty source refuses to be built" in runner.stderr
    )
    assert "stopped source" not in runner.stderr
    before = lines_of(runner, "a")
    await runner.wait_for(lambda: lines_of(runner, "a") > before + 3)

    # A file that does not load is refused the same way.
    config.write_bytes(b"\xff\xfe")
    await reload(runner, "reload refused")
    assert "not UTF-8 text" in runner.stderr.splitlines()[-1]
    assert "stopped source" not in runner.stderr

    # Once "c" builds, the reload goes through: "a" restarts, "b" runs on untouched.
    write_config(config, demo("a", 0.1) + demo("b") + faulty("c", fail=False), flush=0.05)
    await reload(runner, "config reloaded")
    assert "config reloaded: 2 sources restarted or added, 1 unchanged" in runner.stderr
    assert "stopped source a" in runner.stderr
    assert "stopped source b" not in runner.stderr
    _, text = await runner.get("/metrics")
    assert metric_value(text, "fleet_metrics_source_samples_total", source="c") == 0
    before = lines_of(runner, "a")
    await runner.wait_for(lambda: lines_of(runner, "a") > before)

    runner.signal(signal.SIGTERM)
    assert await runner.wait() == 0
    assert_quiet(runner)


async def test_sighup_moves_sources_to_a_new_broker_session(
    tmp_path: Path, processes: list[RunnerProcess]
) -> None:
    """A changed [brokers.x] gets a new session; the sources on it move, the others stay."""
    first, second = Mosquitto(tmp_path / "first"), Mosquitto(tmp_path / "second")
    for broker in (first, second):
        broker.workdir.mkdir()
        await broker.start()
    try:

        def sections(broker: Mosquitto) -> str:
            return (
                f'[brokers.home]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                '[[sources]]\nkind = "tasmota"\nname = "plugs"\nbroker = "home"\n' + demo("d")
            )

        config = write_config(tmp_path / "config.toml", sections(first))
        runner = await RunnerProcess("run", "-c", str(config)).start()
        processes.append(runner)
        await runner.wait_for(lambda: f"connected to 127.0.0.1:{first.port}" in runner.stderr)

        write_config(config, sections(second))
        await reload(runner, "config reloaded")
        assert "config reloaded: 1 sources restarted or added, 1 unchanged" in runner.stderr
        assert "stopped source plugs" in runner.stderr
        assert "stopped source d" not in runner.stderr
        await runner.wait_for(lambda: f"connected to 127.0.0.1:{second.port}" in runner.stderr)

        # Messages on the new broker reach the source that moved there.
        _, text = await runner.get("/metrics")
        received = metric_value(text, "fleet_metrics_source_messages_total", source="plugs") or 0
        await second.publish([("tele/kitchen/LWT", "Online")])

        async def more_messages() -> bool:
            _, text = await runner.get("/metrics")
            value = metric_value(text, "fleet_metrics_source_messages_total", source="plugs")
            return (value or 0) > received

        async with asyncio.timeout(10):
            while not await more_messages():
                await asyncio.sleep(0.1)
        runner.signal(signal.SIGTERM)
        assert await runner.wait() == 0
        assert_quiet(runner)
    finally:
        for broker in (first, second):
            await broker.stop()


@dataclass
class SlowWriteApi:
    """An InfluxDB-style write endpoint that takes ``delay`` seconds to answer."""

    delay: float
    port: int = 0
    started: int = 0
    bodies: list[str] = field(default_factory=list)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, request: web.Request) -> web.Response:
        self.started += 1
        body = await request.text()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), self.delay)
        if self.closing.is_set():
            return web.Response(status=503)
        self.bodies.append(body)
        return web.Response(status=204)


@asynccontextmanager
async def slow_write_api(delay: float) -> AsyncIterator[SlowWriteApi]:
    api = SlowWriteApi(delay)
    app = web.Application()
    app.router.add_post("/write", api.write)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    api.port = runner.addresses[0][1]
    try:
        yield api
    finally:
        api.closing.set()
        await runner.cleanup()


def http_output_config(path: Path, port: int, extra: str = "") -> Path:
    path.write_text(
        f"""{extra}
[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
output = "http://127.0.0.1:{port}/write"
flush_interval = 60

{demo("d")}
""",
        encoding="utf-8",
    )
    return path


async def test_a_second_signal_does_not_interrupt_the_last_flush(
    tmp_path: Path, processes: list[RunnerProcess]
) -> None:
    async with slow_write_api(delay=1.5) as api:
        config = http_output_config(tmp_path / "config.toml", api.port)
        runner = await RunnerProcess("run", "-c", str(config)).start()
        processes.append(runner)
        await runner.wait_for(lambda: "started source d" in runner.stderr)
        await asyncio.sleep(0.3)

        runner.signal(signal.SIGTERM)
        await runner.wait_for(lambda: api.started == 1)  # the last flush is under way
        runner.signal(signal.SIGTERM)
        runner.signal(signal.SIGINT)
        assert await runner.wait() == 0
        assert "SIGTERM: already stopping" in runner.stderr
        assert "SIGINT: already stopping" in runner.stderr
        assert len(api.bodies) == 1
        lines = api.bodies[0].splitlines()
        assert lines and all(parse_line(line).measurement == "demo" for line in lines)
        assert_quiet(runner)


async def test_shutdown_has_a_deadline(tmp_path: Path, processes: list[RunnerProcess]) -> None:
    async with slow_write_api(delay=60) as api:
        config = http_output_config(tmp_path / "config.toml", api.port, "shutdown_timeout = 1")
        runner = await RunnerProcess("run", "-c", str(config)).start()
        processes.append(runner)
        await runner.wait_for(lambda: "started source d" in runner.stderr)
        await asyncio.sleep(0.3)
        started = time.monotonic()
        runner.signal(signal.SIGTERM)
        assert await runner.wait() == 1
        assert time.monotonic() - started < 4
        assert "shutdown did not finish within 1 s (shutdown_timeout)" in runner.stderr
        assert api.bodies == []
        assert_quiet(runner)


async def test_sigint_exits_0_without_a_traceback(
    tmp_path: Path, processes: list[RunnerProcess]
) -> None:
    config = write_config(tmp_path / "config.toml", demo("d"))
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: len(runner.stdout_lines) > 0)
    runner.signal(signal.SIGINT)
    assert await runner.wait() == 0
    assert "SIGINT: stopping" in runner.stderr
    assert_quiet(runner)


async def test_a_closed_stdout_ends_the_runner_with_one_error(tmp_path: Path) -> None:
    """``fleet-metrics run | head -1``: the reader goes, the runner exits 1 with one line."""
    config = write_config(tmp_path / "config.toml", demo("d"), flush=0.05)
    read_end, write_end = os.pipe()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fleet_metrics",
        "run",
        "-c",
        str(config),
        stdout=write_end,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as reader:
            first = await asyncio.to_thread(reader.readline)
        assert first.startswith(b"demo,")
        async with asyncio.timeout(10):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = stderr.decode()
    assert process.returncode == 1, text
    assert text.count(STDOUT_CLOSED) == 1
    assert [line for line in text.splitlines() if " ERROR " in line] == [
        line for line in text.splitlines() if STDOUT_CLOSED in line
    ]
    for noise in (*NOISE, "BrokenPipeError"):
        assert noise not in text, text
