"""MQTT (Tasmota) and WebSocket sources into both outputs of the real command."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson

from tests.core.lp_reference_parser import parse_line
from tests.core.test_prometheus import promtool_check
from tests.mosquitto import Mosquitto
from tests.websocket_feed import Feed

from .runner_process import RunnerProcess, metric_value, write_config

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasmota"


def broker_section(broker: Mosquitto) -> str:
    return f'[brokers.home]\nhost = "127.0.0.1"\nport = {broker.port}\n'


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def test_tasmota_discovery_and_telemetry_reach_both_outputs(
    tmp_path: Path,
    mosquitto: Mosquitto,
    processes: list[RunnerProcess],
) -> None:
    # Retained discovery is already on the broker when the runner starts, as in real life.
    await mosquitto.publish(
        [
            (
                "tasmota/discovery/2CF432CC2FC5/config",
                fixture("discovery_config_energy_plug_v11.0.0.json"),
            ),
            (
                "tasmota/discovery/00000049A3BC/config",
                fixture("discovery_config_topic_first_ha_test.json"),
            ),
        ],
        retain=True,
    )
    config = write_config(
        tmp_path / "config.toml",
        f"""
{broker_section(mosquitto)}
[[sources]]
kind = "tasmota"
name = "plugs"
broker = "home"
""",
    )
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: "broker home: connected" in runner.stderr)
    await runner.wait_for(lambda: any("tasmota_device" in line for line in runner.stdout_lines))

    await mosquitto.publish(
        [
            ("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_pow_r2.json")),
            ("tele/NXSM200_01/STATE", fixture("tele_state_esp8266_relay.json")),
            ("tasmota_49A3BC/tele/LWT", b"Online"),
            ("tasmota_49A3BC/tele/SENSOR", fixture("tele_sensor_bme280.json")),
            ("tele/unknown-device/SENSOR", fixture("malformed_truncated.txt")),
            # A FullTopic with a wildcard would subscribe to everything: refused and counted.
            (
                "tasmota/discovery/AABBCCDDEEFF/config",
                b'{"t":"evil","mac":"AABBCCDDEEFF","ft":"#/%prefix%/%topic%/"}',
            ),
            # An SML meter's own "Meter_Total" is a gauge: promtool must see no gauge _total.
            ("tele/sml/SENSOR", b'{"SML":{"Meter_Total":5,"Power_curr":-894}}'),
            ("tele/meter/SENSOR", fixture("tele_sensor_energy_3phase_modbus.json")),
        ]
    )
    await runner.wait_for(
        lambda: (
            sum("tasmota_energy" in line and "phase=3" in line for line in runner.stdout_lines) >= 1
        )
    )
    status, text = await runner.get("/metrics")
    assert status == 200
    promtool_check(text)
    assert metric_value(text, "tasmota_energy_power_watts", device="NXSM200_01", mac="2CF432CC2FC5")
    assert metric_value(text, "tasmota_relay_on", device="NXSM200_01", relay="1") == 0.0
    assert metric_value(text, "tasmota_device_wifi_signal_dbm", device="NXSM200_01") == -39
    assert metric_value(text, "tasmota_device_online", topic="tasmota_49A3BC") == 1.0
    assert metric_value(text, "tasmota_sensor_pressure_pascals", sensor="BME280") == 98860.0
    assert metric_value(text, "tasmota_energy_power_watts", topic="meter", phase="1") == -136.495
    assert metric_value(text, "tasmota_device_info", mac="2CF432CC2FC5", firmware="11.0.0") == 1
    assert metric_value(text, "tasmota_sensor_meter_total_value", sensor="SML") == 5
    assert "tasmota_sensor_meter_total{" not in text
    assert metric_value(text, "fleet_metrics_source_parse_errors_total", source="plugs") == 2
    assert metric_value(text, "fleet_metrics_mqtt_connected", broker="home") == 1

    lines = [parse_line(line) for line in runner.stdout_lines]
    bme = [line for line in lines if line.tags.get("sensor") == "BME280"]
    assert bme[0].fields["humidity_ratio"] == 0.666
    assert bme[0].tags["device"] == "Tasmota"

    runner.signal(signal.SIGTERM)
    assert await runner.wait(timeout=5) == 0


async def test_websocket_source_reaches_both_outputs(
    tmp_path: Path,
    feed: Feed,
    processes: list[RunnerProcess],
) -> None:
    feed.batches = [['{"data":{"station":"roof","ok":true,"sensors":[{},{"t":"21.5"}]}}']]
    assert feed.server is not None
    url = str(feed.server.make_url("/live")).replace("http://", "ws://")
    config = write_config(
        tmp_path / "config.toml",
        f"""
[[sources]]
kind = "websocket"
name = "weather"
url = "{url}"
fields = {{ temperature_celsius = "data.sensors[1].t" }}
tags = {{ station = "data.station" }}
""",
    )
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: any(line.startswith("weather,") for line in runner.stdout_lines))
    line = parse_line(next(x for x in runner.stdout_lines if x.startswith("weather,")))
    assert line.tags == {"source": "weather", "station": "roof"}
    assert line.fields == {"temperature_celsius": 21.5}
    _, text = await runner.get("/metrics")
    assert metric_value(text, "weather_temperature_celsius", station="roof") == 21.5


async def test_tickrmeter_fleet_statistics_through_the_broker(
    tmp_path: Path, mosquitto: Mosquitto, processes: list[RunnerProcess]
) -> None:
    config = write_config(
        tmp_path / "config.toml",
        f"""
{broker_section(mosquitto)}
[[sources]]
kind = "tickrmeter"
name = "fleet"
broker = "home"
tick = 0.2
request_timeout = 0.5
per_device = true
""",
    )
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: "broker home: connected" in runner.stderr)
    await asyncio.sleep(0.3)  # subscriptions are sent right after CONNACK

    def request(device: str, symbol: str) -> tuple[str, bytes]:
        return "STOCKPRICEUPDATE", orjson.dumps(
            {"type": "UPDATE", "device": device, "symbol": symbol}
        )

    def answer(device: str, symbol: str) -> tuple[str, bytes]:
        return device, orjson.dumps({"symbol": symbol, "price": "$1", "type": "UPDATE"})

    devices = [f"08A6F792DD{i:02X}" for i in range(10)]
    await mosquitto.publish([request(d, "AAPL") for d in devices] + [request(devices[0], "BTC")])
    await asyncio.sleep(0.1)
    await mosquitto.publish(
        [answer(d, "AAPL") for d in devices]
        + [
            ("DEVICESTATUS_RES", orjson.dumps(
                {"firmware_version": "62p", "device": devices[1], "battery": "12"}
            )),
            ("TICKRMETERBOOT", orjson.dumps({"type": "BOOT", "device": devices[2]})),
            ("DEVICESTATUS_RES", b"{broken"),
            ("FFFFFFFFFFFF", b'{"symbol":"ETH"}'),
        ]
    )  # fmt: skip
    # Hostile input: counted parse errors, never series, never a restart.
    hostile = [
        request(devices[3], "X" * 1_000_000),  # too large to decode
        request(devices[3], "NOT A TICKER"),  # a name no ticker has
        answer(devices[4], "\x1b[2J"),
        ("STOCKPRICEUPDATE", b"[" * 5_000 + b"]" * 5_000),  # deeper than any decoder goes
        ("HTTPSTREAMSTOCKS", b'{"device":{"nested":' * 300 + b"1" + b"}" * 300 + b"}"),
    ]
    await mosquitto.publish(hostile)

    def scraped(text: str) -> bool:
        errors = metric_value(text, "fleet_metrics_source_parse_errors_total", source="fleet")
        timeouts = metric_value(text, "tickrmeter_stock_update_timeout_total", symbol="BTC")
        return (timeouts or 0) >= 1 and errors == 1 + len(hostile)

    text = ""
    async with asyncio.timeout(10):
        while not scraped(text):
            await asyncio.sleep(0.2)
            _, text = await runner.get("/metrics")
    promtool_check(text)
    assert metric_value(text, "tickrmeter_stock_update_requests_total", symbol="AAPL") == 10
    assert metric_value(text, "tickrmeter_stock_update_responses_total", symbol="AAPL") == 10
    assert (
        metric_value(text, "tickrmeter_stock_update_unsolicited_responses_total", symbol="ETH") == 1
    )
    assert metric_value(text, "tickrmeter_stock_update_latency_seconds_count", symbol="AAPL") == 10
    assert (
        metric_value(
            text, "tickrmeter_stock_update_latency_seconds_bucket", symbol="AAPL", le="+Inf"
        )
        == 10
    )
    assert metric_value(text, "tickrmeter_stock_update_response_ratio", symbol="BTC") == 0.0
    assert metric_value(text, "tickrmeter_slowest_symbols_ranking", symbol="AAPL", rank="1") > 0
    assert metric_value(text, "tickrmeter_devices_online") == 11  # 10 + the unsolicited one
    assert metric_value(text, "tickrmeter_devices_by_firmware", firmware_version="62p") == 1
    assert metric_value(text, "tickrmeter_devices_low_battery") == 1
    assert metric_value(text, "tickrmeter_device_battery_level", device_id=devices[1]) == 12
    assert metric_value(text, "tickrmeter_device_boots_total", device_id=devices[2]) == 1
    assert metric_value(text, "tickrmeter_messages_malformed_total", kind="status") == 1
    assert metric_value(text, "tickrmeter_messages_malformed_total", kind="request") == 3
    malformed = sum(
        metric_value(text, "tickrmeter_messages_malformed_total", kind=kind) or 0
        for kind in ("request", "response", "status", "boot", "stream")
    )
    assert malformed == 1 + len(hostile)
    errors = metric_value(text, "fleet_metrics_source_parse_errors_total", source="fleet")
    assert errors == malformed
    assert metric_value(text, "fleet_metrics_source_restarts_total", source="fleet") in (0, None)
    assert metric_value(text, "tickrmeter_symbols_tracked") == 3  # AAPL, BTC, ETH
    assert len(text) < 100_000
    assert "NOT A TICKER" not in text and "XXXXXXXX" not in text
    gauges = [line.split()[2] for line in text.splitlines() if line.endswith(" gauge")]
    assert gauges and not [name for name in gauges if name.endswith("_total")]
    lines = [parse_line(line) for line in runner.stdout_lines if line.startswith("tickrmeter_")]
    assert any(line.measurement == "tickrmeter_stock_update_latency_seconds" for line in lines)
