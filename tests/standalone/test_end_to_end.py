"""The real command, as an operator or telegraf runs it."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

from tests.core.lp_reference_parser import parse_line
from tests.core.test_prometheus import promtool_check
from tests.opendtu_fake import FakeOpenDtu

from .runner_process import RunnerProcess, metric_value, write_config


def demo_source(name: str, trigger: Path, interval: float = 0.1) -> str:
    return f"""
[[sources]]
kind = "demo"
name = "{name}"
interval = {interval}
trigger_file = "{trigger}"
"""


async def test_scrape_stdout_supervision_reload_and_sigterm(
    tmp_path: Path, opendtu: FakeOpenDtu, processes: list[RunnerProcess]
) -> None:
    crash = tmp_path / "crash"
    config = write_config(
        tmp_path / "config.toml",
        demo_source("steady", tmp_path / "never")
        + demo_source("flaky", crash)
        + f'[[sources]]\nkind = "opendtu"\nname = "roof"\nurl = "{opendtu.url}"\ninterval = 0.2\n',
    )
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)

    # /healthz and /metrics on one server
    assert await runner.get("/healthz") == (200, "ok\n")
    await runner.wait_for(
        lambda: any(line.startswith("opendtu_string") for line in runner.stdout_lines)
    )
    status, text = await runner.get("/metrics")
    assert status == 200
    promtool_check(text)
    assert metric_value(text, "demo_temperature_celsius", source="steady") is not None
    assert metric_value(text, "opendtu_inverter_power_watts", serial="114182345678") == 70.1
    assert metric_value(text, "opendtu_dtu_up", dtu="roof") == 1.0
    assert metric_value(text, "fleet_metrics_source_samples_total", source="roof", kind="opendtu")
    assert metric_value(text, "fleet_metrics_source_last_sample_age_seconds", source="steady") < 5

    # stdout is pure line protocol
    for line in runner.stdout_lines:
        parsed = parse_line(line)
        assert parsed.timestamp is not None and parsed.timestamp > 1_600_000_000 * 10**9
    measurements = {parse_line(line).measurement for line in runner.stdout_lines}
    assert {"demo", "opendtu_dtu", "opendtu_inverter", "opendtu_string"} <= measurements

    # a crashing source restarts with backoff; the other keeps counting
    crash.touch()
    await runner.wait_for(lambda: "source flaky failed" in runner.stderr)
    steady_before = len([line for line in runner.stdout_lines if "source=steady" in line])
    await asyncio.sleep(1.0)
    _, text = await runner.get("/metrics")
    assert metric_value(text, "fleet_metrics_source_restarts_total", source="flaky") >= 1
    assert metric_value(text, "fleet_metrics_source_restarts_total", source="steady") == 0
    assert len([line for line in runner.stdout_lines if "source=steady" in line]) > steady_before
    crash.unlink()

    # SIGHUP: change one source, add one; the unchanged one is not restarted
    steady_ticks = metric_value(text, "demo_ticks_total", source="steady")
    assert steady_ticks is not None
    write_config(
        config,
        demo_source("steady", tmp_path / "never")
        + demo_source("flaky", crash, interval=0.05)
        + demo_source("added", tmp_path / "never"),
    )
    runner.signal(signal.SIGHUP)
    await runner.wait_for(lambda: "config reloaded" in runner.stderr)
    await runner.wait_for(lambda: any("source=added" in line for line in runner.stdout_lines))
    _, text = await runner.get("/metrics")
    assert metric_value(text, "demo_ticks_total", source="steady") > steady_ticks
    assert "stopped source roof" in runner.stderr
    assert "stopped source steady" not in runner.stderr
    assert "config reloaded: 2 sources restarted or added, 1 unchanged" in runner.stderr

    # a bad config on reload is refused and the runner keeps going
    config.write_text("[[sources]]\nkind = 'demo'\nname = 'x'\ninterval = 'often'\n")
    runner.signal(signal.SIGHUP)
    await runner.wait_for(lambda: "reload refused" in runner.stderr)
    assert "sources[0].interval" in runner.stderr

    # SIGTERM: flush and exit 0 within 5 s
    lines_before = len(runner.stdout_lines)
    started = time.monotonic()
    runner.signal(signal.SIGTERM)
    assert await runner.wait(timeout=5) == 0
    assert time.monotonic() - started < 5
    assert len(runner.stdout_lines) >= lines_before
    assert re.search(r"stopped; \d+ line protocol lines written", runner.stderr)


async def test_bad_config_exits_2_naming_the_key_and_starts_nothing(
    tmp_path: Path, processes: list[RunnerProcess]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[sources]]\nkind = "opendtu"\nname = "roof"\nurl = "gopher://x"\n')
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    assert await runner.wait() == 2
    assert "config error: sources[0].url" in runner.stderr
    assert runner.port is None
    assert runner.stdout_lines == []


async def test_built_in_demo_config_runs(processes: list[RunnerProcess]) -> None:
    runner = await RunnerProcess("run", "--listen", "127.0.0.1:0").start()
    processes.append(runner)
    status, _ = await runner.get("/metrics")
    assert status == 200
    await runner.wait_for(lambda: len(runner.stdout_lines) >= 1, timeout=10)
    assert parse_line(runner.stdout_lines[0]).measurement == "demo"
    runner.signal(signal.SIGINT)
    assert await runner.wait(timeout=5) == 0


async def test_check_config(tmp_path: Path, processes: list[RunnerProcess]) -> None:
    config = write_config(tmp_path / "c.toml", demo_source("d", tmp_path / "never"))
    runner = await RunnerProcess("check-config", "-c", str(config)).start()
    processes.append(runner)
    assert await runner.wait() == 0
    assert runner.stdout_lines == [f"{config}: ok (1 sources)"]
