"""``fleet-metrics demo`` as a real process: every kind of source on /metrics, status lines,
no error, and a clean exit on SIGTERM or after ``--duration``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from fleet_metrics.demo import agent_url, demo_config
from fleet_metrics.simulators.broker import BrokerAddress
from prometheus_client.parser import text_string_to_metric_families

from tests.core.lp_reference_parser import parse_line
from tests.mosquitto import Mosquitto

from .runner_process import RunnerProcess, processes  # noqa: F401 - the fixture

REPO = Path(__file__).parents[2]

# One series per kind of source that shows it produced samples (the host agent's under its
# node_exporter names).
EVERY_KIND = {
    "tasmota": "tasmota_energy_total_joules",
    "opendtu": "opendtu_inverter_power_watts",
    "tickrmeter": "tickrmeter_devices_online",
    "host agent": "node_load1",
}
STATUS = re.compile(r"status: (\d+)/(\d+) sources producing, (\d+) messages")


def series(text: str) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample.labels)
    return found


def no_errors(stderr: str) -> None:
    assert " ERROR " not in stderr and "Traceback" not in stderr and " WARNING " not in stderr, (
        stderr
    )


async def every_kind_on_metrics(demo: RunnerProcess) -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}

    async def scrape() -> bool:
        nonlocal found
        status, text = await demo.get("/metrics")
        assert status == 200
        found = series(text)
        return all(name in found for name in EVERY_KIND.values())

    for _ in range(150):
        if await scrape():
            return found
        await asyncio.sleep(0.1)
    missing = [kind for kind, name in EVERY_KIND.items() if name not in found]
    raise AssertionError(f"no series for {missing}:\n{demo.stderr}")


async def test_demo_shows_every_kind_and_stops_cleanly_on_sigterm(
    processes: list[RunnerProcess],  # noqa: F811
) -> None:
    demo = await RunnerProcess("demo", "--listen", "127.0.0.1:0", "--broker-port", "0").start()
    processes.append(demo)
    found = await every_kind_on_metrics(demo)
    assert {labels["host"] for labels in found["node_load1"]} != set()
    inverters = {labels["serial"] for labels in found["opendtu_inverter_power_watts"]}
    assert len(inverters) == 2
    devices = {labels["device"] for labels in found["tasmota_energy_total_joules"]}
    assert len(devices) == 3  # the three plugs
    # A status line every few seconds, with every source producing.
    await demo.wait_for(lambda: len(STATUS.findall(demo.stderr)) >= 2, timeout=15)
    producing, sources, _ = STATUS.findall(demo.stderr)[-1]
    assert producing == sources == "4"
    demo.signal(signal.SIGTERM)
    assert await demo.wait(timeout=10) == 0
    no_errors(demo.stderr)
    measurements = {parse_line(line).measurement for line in demo.stdout_lines}
    assert {"tasmota_energy", "opendtu_inverter", "tickrmeter_devices", "cpu"} <= measurements


async def test_demo_on_an_external_broker_stops_after_its_duration(
    processes: list[RunnerProcess],  # noqa: F811
    mosquitto: Mosquitto,
) -> None:
    demo = await RunnerProcess(
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--broker",
        f"127.0.0.1:{mosquitto.port}",
        "--duration",
        "6",
    ).start()
    processes.append(demo)
    found = await every_kind_on_metrics(demo)
    assert "tasmota_device_online" in found
    assert await demo.wait(timeout=15) == 0
    assert "6 s are over" in demo.stderr
    no_errors(demo.stderr)


async def test_a_taken_listen_port_is_one_line_and_exit_2(
    processes: list[RunnerProcess],  # noqa: F811
) -> None:
    first = await RunnerProcess("demo", "--listen", "127.0.0.1:0", "--broker-port", "0").start()
    processes.append(first)
    await first.wait_for(lambda: first.port is not None)
    second = await RunnerProcess(
        "demo", "--listen", f"127.0.0.1:{first.port}", "--broker-port", "0"
    ).start()
    processes.append(second)
    assert await second.wait(timeout=15) == 2
    assert "cannot start: prometheus.listen" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", ""], "--listen"),
        (["--listen", "nonsense"], "--listen"),
        (["--broker", "host:x"], "--broker"),
        (["--broker-port", "70000"], "--broker-port"),
        (["--duration", "-1"], "--duration"),
        (["--broker", "h:1", "--broker-port", "1"], "not allowed with"),
    ],
)
async def test_bad_options_are_refused_before_anything_starts(
    processes: list[RunnerProcess],  # noqa: F811
    args: list[str],
    message: str,
) -> None:
    demo = await RunnerProcess("demo", *args).start()
    processes.append(demo)
    assert await demo.wait() == 2
    assert message in demo.stderr
    assert demo.port is None


def test_the_config_has_every_kind_on_the_given_broker(tmp_path: Path) -> None:
    config = demo_config(
        BrokerAddress("127.0.0.1", 1999),
        "http://127.0.0.1:8",
        tmp_path / "h.sqlite",
        "0.0.0.0:9847",
    )
    assert {s["kind"] for s in config["sources"]} == {"tasmota", "opendtu", "tickrmeter", "agents"}
    assert config["brokers"]["demo"]["port"] == 1999
    assert config["prometheus"]["listen"] == "0.0.0.0:9847"


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:9847", "ws://127.0.0.1:5/api/agent"),
        ("0.0.0.0:9847", "ws://127.0.0.1:5/api/agent"),
        ("[::]:9847", "ws://[::1]:5/api/agent"),
        ("[::1]:9847", "ws://[::1]:5/api/agent"),
    ],
)
def test_the_agent_reaches_the_runner_where_it_listens(listen: str, url: str) -> None:
    assert agent_url(listen, 5) == url


def test_make_demo_uses_its_own_venv_without_the_test_stack() -> None:
    """What ``make demo`` would run (dry run): a venv of its own with the demo extra."""
    # Under `make test` the parent's MAKEFLAGS/MAKELEVEL would add "Entering directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    commands = result.stdout
    assert "-m venv .venv-demo" in commands
    assert "pip install --quiet -e '.[demo]'" in commands
    assert "requirements-test" not in commands and "homeassistant" not in commands
    assert commands.rstrip().endswith(".venv-demo/bin/fleet-metrics demo")
