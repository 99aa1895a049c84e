"""The garbage flood: 200,000 distinct ids a hostile or broken publisher makes up, through
the real runner and a real Mosquitto, one MQTT source at a time.

TickrMeter gets requests, answers, statuses and boots from made-up devices for made-up
symbols (and names no ticker has); Tasmota gets telemetry and discovery announcements for
made-up topics and MACs. Each id is new, so everything the source keeps per id has to meet
its cap. For each source the runner is warmed up with real traffic first (one-time
allocations are no growth), then flooded; the figures are the RSS growth against the
target, the source's own counters, and the size and render time of ``/metrics`` after it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tests.mosquitto import Mosquitto
from tests.standalone.runner_process import RunnerProcess, metric_value

from .fleet_stream import generate
from .measure import Report, Runner
from .raw_publisher import encode, publish

TARGET_GROWTH_MB = 20.0  # RSS growth per source for 200,000 garbage ids
FLOOD_RATE = 20_000.0  # messages per second
# Sent in chunks, each drained before the next: a source slower than the flood still gets
# every message (Mosquitto drops QoS 0 messages a slow subscriber cannot take).
CHUNK = 10_000
TASMOTA_FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures" / "tasmota"

RUNNER_CONFIG = """
[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
output = "file:{workdir}/garbage.lp"
flush_interval = 1

[brokers.bench]
host = "127.0.0.1"
port = {port}

[[sources]]
name = "garbage"
broker = "bench"
{source}
"""

Message = tuple[str, bytes]


def _garbage_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(48):012X}"


def tickrmeter_flood(count: int, seed: int) -> list[Message]:
    """``count`` messages, each with a new device id, symbol or firmware."""
    rng = random.Random(seed)
    out: list[Message] = []
    for index in range(count):
        device = _garbage_id(rng)
        symbol = f"Z{index:x}{rng.getrandbits(20):x}"
        roll = rng.random()
        if roll < 0.4:
            body = {"type": "UPDATE", "device": device, "symbol": symbol}
            out.append(("STOCKPRICEUPDATE", orjson.dumps(body)))
        elif roll < 0.6:
            out.append((device, orjson.dumps({"symbol": symbol, "price": "$1"})))
        elif roll < 0.8:
            body = {"device": device, "firmware_version": f"g{index:x}", "battery": "50"}
            out.append(("DEVICESTATUS_RES", orjson.dumps(body)))
        elif roll < 0.9:
            out.append(("TICKRMETERBOOT", orjson.dumps({"type": "BOOT", "device": device})))
        else:  # names no ticker has: too long, spaces, control characters
            bad = rng.choice((symbol * 8, f"{symbol} {symbol}", f"{symbol}\n", f"\x1b{symbol}"))
            body = {"type": "UPDATE", "device": device, "symbol": bad}
            out.append(("STOCKPRICEUPDATE", orjson.dumps(body)))
    return out


def tickrmeter_warmup() -> list[Message]:
    return generate(5_000, 200, 200, seed=9).messages


def _fixture(name: str) -> bytes:
    return (TASMOTA_FIXTURES / name).read_bytes()


def tasmota_flood(count: int, seed: int) -> list[Message]:
    """``count`` messages, each for a new topic (telemetry) or MAC and topic (discovery)."""
    rng = random.Random(seed)
    sensor = _fixture("tele_sensor_bme280.json")
    state = _fixture("tele_state_esp8266_relay.json")
    config = orjson.loads(_fixture("discovery_config_energy_plug_v11.0.0.json"))
    out: list[Message] = []
    for index in range(count):
        topic = f"g{index:x}_{rng.getrandbits(24):x}"
        roll = rng.random()
        if roll < 0.5:
            out.append((f"tele/{topic}/SENSOR", sensor))
        elif roll < 0.6:
            out.append((f"tele/{topic}/STATE", state))
        else:
            mac = _garbage_id(rng)
            announced = {**config, "mac": mac, "t": topic, "hn": topic, "dn": topic}
            out.append((f"tasmota/discovery/{mac}/config", orjson.dumps(announced)))
    return out


def tasmota_warmup() -> list[Message]:
    sensor = _fixture("tele_sensor_bme280.json")
    return [(f"tele/plug{index % 20}/SENSOR", sensor) for index in range(2_000)]


SCENARIOS: dict[str, tuple[str, Callable[[int, int], list[Message]], Callable[[], list[Message]]]]
SCENARIOS = {
    "tickrmeter": ('kind = "tickrmeter"\ntick = 1', tickrmeter_flood, tickrmeter_warmup),
    "tasmota": ('kind = "tasmota"', tasmota_flood, tasmota_warmup),
}


async def _settle(runner: Runner, expected: int) -> int:
    received, _ = await runner.drained(expected, quiet=3.0)
    await asyncio.sleep(2.5)  # two ticks and a flush: samples of what came reach the sinks
    return received


async def _metrics_figures(report: Report, runner: Runner) -> str:
    text = await runner.scrape()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        await runner.scrape()
        timings.append(time.perf_counter() - start)
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    report.value("  /metrics after the flood: size", len(text.encode()) / 1e6, "MB")
    report.value("  /metrics after the flood: series", series, "")
    report.value("  /metrics after the flood: GET time (best of 3)", min(timings) * 1e3, "ms")
    return text


def _source_counters(report: Report, text: str) -> None:
    for label, name, labels in (
        ("  parse errors counted (rejections)", "fleet_metrics_source_parse_errors_total",
         {"source": "garbage"}),
        ("  symbols tracked", "tickrmeter_symbols_tracked", {}),
        ("  symbols forgotten (cap)", "tickrmeter_symbols_forgotten_total", {}),
        ("  devices known", "tickrmeter_devices_known", {}),
        ("  devices forgotten (cap)", "tickrmeter_devices_forgotten_total", {}),
        ("  requests pending", "tickrmeter_requests_pending", {}),
    ):  # fmt: skip
        value = metric_value(text, name, **labels)
        if value is not None:
            report.value(label, int(value), "")


async def flood_one(report: Report, kind: str, workdir: Path, count: int, seed: int) -> None:
    source, make_flood, make_warmup = SCENARIOS[kind]
    report.say(f"\n  {kind}: {count:,} garbage ids at {FLOOD_RATE:,.0f} msg/s")
    flood = encode(make_flood(count, seed))
    warmup = encode(make_warmup())
    broker = Mosquitto(workdir)
    await broker.start()
    config = workdir / f"garbage-{kind}.toml"
    text = RUNNER_CONFIG.format(workdir=workdir, port=broker.port, source=source)
    config.write_text(text, encoding="utf-8")
    process = await RunnerProcess("run", "-c", str(config)).start()
    try:
        await process.wait_for(lambda: "broker bench: connected" in process.stderr, timeout=20)
        await asyncio.sleep(0.5)  # subscriptions go out right after CONNACK
        runner = Runner(process)
        await asyncio.to_thread(publish, broker.port, warmup, FLOOD_RATE)
        before = await _settle(runner, len(warmup))
        await runner.scrape()
        start_rss = runner.rss_mb()
        report.value("  runner RSS after the warm-up", start_rss, "MB")
        received = before
        for index in range(0, len(flood), CHUNK):
            chunk = flood[index : index + CHUNK]
            await asyncio.to_thread(publish, broker.port, chunk, FLOOD_RATE)
            received, _ = await runner.drained(received + len(chunk), quiet=3.0)
        received = await _settle(runner, before + len(flood)) - before
        report.value("  messages received of those sent", received, f"/ {len(flood):,}")
        if received < len(flood):
            report.misses.append(f"{kind}: {len(flood) - received:,} garbage messages lost")
        growth = runner.rss_mb() - start_rss
        text = await _metrics_figures(report, runner)
        growth = max(growth, runner.rss_mb() - start_rss)
        _source_counters(report, text)
        report.check(f"  {kind}: RSS growth for {count:,} garbage ids", growth, "MB",
                     TARGET_GROWTH_MB)  # fmt: skip
        verdict = "PASS" if growth <= TARGET_GROWTH_MB else "FAIL"
        report.say(f"  {verdict}: {kind} grew {growth:.1f} MB (target <= {TARGET_GROWTH_MB:.0f})")
        if "Traceback" in process.stderr:
            report.misses.append(f"{kind}: the runner logged a traceback")
            report.say("  the runner logged a traceback:\n" + process.stderr[-2000:])
    finally:
        await process.kill()
        await broker.stop()


async def garbage(report: Report, workdir: Path, count: int, seed: int, kinds: list[str]) -> None:
    report.say("\n[garbage] distinct made-up ids through each MQTT source")
    for kind in kinds:
        folder = workdir / kind
        folder.mkdir()
        await flood_one(report, kind, folder, count, seed)
