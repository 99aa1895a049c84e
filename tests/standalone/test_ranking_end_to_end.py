"""The real runner, a real broker: after the slowest symbol changes, /metrics shows only the
current ranking (and only the firmware versions online devices run), not the old series
left to the sink's TTL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.core.test_prometheus import promtool_check
from tests.mosquitto import Mosquitto

from .runner_process import RunnerProcess, write_config

Message = tuple[str, bytes | str]


def request(device: str, symbol: str) -> Message:
    return "STOCKPRICEUPDATE", orjson.dumps({"type": "UPDATE", "device": device, "symbol": symbol})


def answer(device: str, symbol: str) -> Message:
    return device, orjson.dumps({"symbol": symbol, "price": "$1", "type": "UPDATE"})


def status(device: str, firmware: str) -> Message:
    return "DEVICESTATUS_RES", orjson.dumps({"device": device, "firmware_version": firmware})


def series(text: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def ranking(text: str) -> list[tuple[str, str]]:
    return sorted(
        (labels["rank"], labels["symbol"])
        for labels in series(text, "tickrmeter_slowest_symbols_ranking")
    )


def firmware(text: str) -> list[str]:
    return sorted(
        labels["firmware_version"] for labels in series(text, "tickrmeter_devices_by_firmware")
    )


async def scrape_until(
    runner: RunnerProcess, done: Callable[[str], bool], timeout: float = 15.0
) -> str:
    text = ""
    async with asyncio.timeout(timeout):
        while not done(text):
            await asyncio.sleep(0.2)
            _, text = await runner.get("/metrics")
    return text


async def test_metrics_show_only_the_current_ranking_after_it_changed(
    tmp_path: Path, mosquitto: Mosquitto, processes: list[RunnerProcess]
) -> None:
    config = write_config(
        tmp_path / "config.toml",
        f"""
[brokers.home]
host = "127.0.0.1"
port = {mosquitto.port}

[[sources]]
kind = "tickrmeter"
name = "fleet"
broker = "home"
tick = 0.2
top = 2
request_timeout = 10
""",
    )
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: "broker home: connected" in runner.stderr)
    await asyncio.sleep(0.3)  # subscriptions are sent right after CONNACK

    devices = [f"08A6F792DD{i:02X}" for i in range(4)]
    await mosquitto.publish(
        [request(d, "AAPL") for d in devices]
        + [request(d, "BTC") for d in devices]
        + [answer(d, "BTC") for d in devices]
        + [status(devices[0], "62p"), status(devices[1], "62p")]
    )
    await asyncio.sleep(0.4)
    await mosquitto.publish([answer(d, "AAPL") for d in devices])
    text = await scrape_until(runner, lambda text: ("2", "BTC") in ranking(text))
    assert ranking(text) == [("1", "AAPL"), ("2", "BTC")]
    assert firmware(text) == ["62p", "unknown"]  # devices with no status yet: unknown

    # ETH becomes the slowest; BTC falls out of the top 2; both devices move to firmware 70.
    await mosquitto.publish([request(d, "ETH") for d in devices])
    await asyncio.sleep(1.2)
    await mosquitto.publish(
        [answer(d, "ETH") for d in devices] + [status(devices[0], "70"), status(devices[1], "70")]
    )
    text = await scrape_until(
        runner, lambda text: ("1", "ETH") in ranking(text) and "70" in firmware(text)
    )
    promtool_check(text)
    assert ranking(text) == [("1", "ETH"), ("2", "AAPL")]
    assert firmware(text) == ["70", "unknown"]
    await asyncio.sleep(0.5)  # a few more ticks: still only the current ranks
    _, text = await runner.get("/metrics")
    assert ranking(text) == [("1", "ETH"), ("2", "AAPL")]
    assert firmware(text) == ["70", "unknown"]
    requests = series(text, "tickrmeter_stock_update_requests_total")
    assert {labels["symbol"] for labels in requests} == {"AAPL", "BTC", "ETH"}  # not sets
