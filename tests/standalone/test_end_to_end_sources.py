"""MQTT (Tasmota) and WebSocket sources into both outputs of the real command."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.core.lp_reference_parser import parse_line
from tests.core.test_prometheus import promtool_check
from tests.mosquitto import Mosquitto
from tests.websocket_feed import Feed

from .runner_process import RunnerProcess, metric_value, write_config

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasmota"


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
[brokers.home]
host = "127.0.0.1"
port = {mosquitto.port}

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
    assert metric_value(text, "fleet_metrics_source_parse_errors_total", source="plugs") == 1
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
