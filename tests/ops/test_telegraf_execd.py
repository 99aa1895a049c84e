"""The runner under telegraf's ``inputs.execd``, as deploy/telegraf/fleet-metrics.conf sets it up.

``ExecdParent`` does what telegraf's execd does with its child (internal/process in
influxdata/telegraf): start the command with stdin, stdout and stderr pipes, hand every
stdout line to the influx parser, start the child again ``restart_delay`` after it exits on
its own, and stop it by closing stdin, then SIGTERM after a grace period, then SIGKILL.
telegraf's grace is 5 s; the test uses 1 s, which the runner does not need anyway because
it ignores stdin.

The source is real: a Tasmota plug's telemetry through a real Mosquitto broker. The runner's
flush interval is longer than the test, so every line that reaches the parent was written
by the flush that SIGTERM triggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from fleet_metrics.cli import _parser

from tests.core.lp_reference_parser import Line, parse_line
from tests.mosquitto import Mosquitto, free_port
from tests.standalone.runner_process import metric_value

ROOT = Path(__file__).resolve().parents[2]
TELEGRAF_CONF = ROOT / "deploy" / "telegraf" / "fleet-metrics.conf"
FIXTURES = ROOT / "tests" / "fixtures" / "tasmota"
VENV_BINARY = str(Path(sys.executable).parent / "fleet-metrics")
MAC = "2CF432CC2FC5"


def execd_settings() -> dict[str, object]:
    """The one ``[[inputs.execd]]`` table of the shipped telegraf config (telegraf's config
    is TOML)."""
    config = tomllib.loads(TELEGRAF_CONF.read_text(encoding="utf-8"))
    (execd,) = config["inputs"]["execd"]
    settings: dict[str, object] = execd
    return settings


def seconds(duration: object) -> float:
    """A telegraf duration such as "10s" or "500ms"."""
    assert isinstance(duration, str)
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    assert duration.endswith("s"), duration
    return float(duration[:-1])


@dataclass
class ExecdParent:
    command: list[str]
    restart_delay: float
    grace: float = 1.0
    lines: list[Line] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    starts: int = 0
    _child: asyncio.subprocess.Process | None = None
    _loop: asyncio.Task[None] | None = None
    _stopping: bool = False

    async def start(self) -> None:
        self._loop = asyncio.create_task(self._run())
        await self.until(lambda: self.starts == 1)

    async def _run(self) -> None:
        while True:
            child = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            self._child = child
            self.starts += 1
            assert child.stdout is not None and child.stderr is not None
            await asyncio.gather(
                self._read_stdout(child.stdout), self._read_stderr(child.stderr), child.wait()
            )
            self.exits.append(child.returncode if child.returncode is not None else -999)
            if self._stopping:
                return
            await asyncio.sleep(self.restart_delay)

    async def _read_stdout(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            text = raw.decode().rstrip("\n")
            try:
                self.lines.append(parse_line(text))
            except (IndexError, ValueError):
                self.unparsed.append(text)

    async def _read_stderr(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.stderr.append(raw.decode().rstrip("\n"))

    @property
    def child(self) -> asyncio.subprocess.Process:
        assert self._child is not None
        return self._child

    async def until(self, predicate: object, timeout: float = 15.0) -> None:
        assert callable(predicate)
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """telegraf's Stop: close stdin, SIGTERM after the grace, SIGKILL after another."""
        self._stopping = True
        child = self.child
        assert child.stdin is not None
        child.stdin.close()
        for action in (child.terminate, child.kill):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.grace):
                    await asyncio.shield(child.wait())
                break
            action()
        assert self._loop is not None
        async with asyncio.timeout(10):
            await self._loop
        return self.exits[-1]


async def energy_total(port: int) -> float | None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as response,
    ):
        text = await response.text()
    return metric_value(text, "tasmota_energy_total_joules", mac=MAC)


async def wait_for_total(port: int, kwh: float) -> None:
    async with asyncio.timeout(15):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                if await energy_total(port) == kwh * 3_600_000:
                    return
            await asyncio.sleep(0.1)


def sensor(total_kwh: float) -> bytes:
    payload = orjson.loads((FIXTURES / "tele_sensor_energy_plug_pow_r2.json").read_bytes())
    payload["ENERGY"]["Total"] = total_kwh
    return orjson.dumps(payload)


def energy_totals(lines: list[Line]) -> list[object]:
    return [
        line.fields["total_joules"]
        for line in lines
        if line.measurement == "tasmota_energy" and line.tags.get("mac") == MAC
    ]


def test_shipped_execd_settings_fit_a_runner_that_writes_on_its_own() -> None:
    settings = execd_settings()
    assert settings["signal"] == "none"  # the runner flushes on its own timer
    assert settings["data_format"] == "influx"
    assert seconds(settings["restart_delay"]) > 0
    command = settings["command"]
    assert isinstance(command, list)
    args = _parser().parse_args(command[1:])
    assert args.command == "run"
    assert args.log_level in ("warning", "error")  # stderr lines become telegraf errors


async def test_runner_under_an_execd_parent_flushes_on_sigterm_and_picks_up_after_a_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    await mosquitto.publish(
        [
            (
                f"tasmota/discovery/{MAC}/config",
                (FIXTURES / "discovery_config_energy_plug_v11.0.0.json").read_bytes(),
            ),
        ],
        retain=True,
    )
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
shutdown_timeout = 4

[prometheus]
listen = "127.0.0.1:{port}"

[line_protocol]
output = "stdout"
flush_interval = 300

[brokers.home]
host = "127.0.0.1"
port = {mosquitto.port}

[[sources]]
kind = "tasmota"
name = "plugs"
broker = "home"
""",
        encoding="utf-8",
    )
    settings = execd_settings()
    command = [str(part) for part in settings["command"]]  # type: ignore[attr-defined]
    command[0] = VENV_BINARY
    command[command.index("-c") + 1] = str(config)
    parent = ExecdParent(command, restart_delay=0.5)
    await parent.start()
    try:
        await wait_for_total_after(mosquitto, port, 6.294)
        assert parent.lines == []  # nothing flushed yet: the interval is 300 s
        first = parent.child.pid

        # A crash: the parent starts the runner again, which gets the retained discovery
        # back from the broker and carries on with the next reading.
        parent.child.kill()
        await parent.until(lambda: parent.starts == 2)
        assert parent.child.pid != first
        assert parent.exits == [-signal.SIGKILL]
        await wait_for_total_after(mosquitto, port, 7.5)

        code = await parent.stop()
    finally:
        if parent._child is not None and parent._child.returncode is None:
            parent._child.kill()
    assert code == 0, "\n".join(parent.stderr)
    assert parent.unparsed == []
    # The killed runner lost its buffer; the stopped one flushed everything it had (a
    # reading may have been published more than once while the runner subscribed).
    totals = energy_totals(parent.lines)
    assert totals
    assert set(totals) == {7.5 * 3_600_000}
    assert {line.measurement for line in parent.lines} >= {"tasmota_energy", "tasmota_device"}
    assert not [line for line in parent.stderr if " INFO " in line or "ERROR" in line]


async def wait_for_total_after(mosquitto: Mosquitto, port: int, kwh: float) -> None:
    """Publish a reading once the runner's endpoint answers, until /metrics shows it: the
    runner may still be subscribing when the first message is published."""
    async with asyncio.timeout(20):
        while True:
            await mosquitto.publish([("tele/NXSM200_01/SENSOR", sensor(kwh))])
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with asyncio.timeout(1):
                    await wait_for_total(port, kwh)
                return
