"""The integration's own CPU per TickrMeter message inside a real Home Assistant.

Run on demand (not part of ``make test``)::

    .venv/bin/python -m bench.ha_tickrmeter [--messages 40000] [--rate 5000]

A Home Assistant instance is created in this process (``HomeAssistant(config_dir)`` set up the
way ``bootstrap`` does it: core, ``http`` on a free loopback port, the registries), a TickrMeter
entry is added for a real Mosquitto on loopback, and the deterministic fleet stream of
``bench/fleet_stream.py`` (about half requests, half answers) is published at a fixed rate from
a separate process, so the publisher's CPU is not counted. The figure is this process's CPU
(``time.process_time``: every thread) while the messages arrive and until the tracker has
counted them all, minus what an idle Home Assistant with the entry loaded spends in the same
wall time, divided by the messages. Compare it with the runner's figure from
``python -m bench.tickrmeter --only fleet`` ("runner CPU per message"), which is measured the
same way on the runner process; the target is within twice the runner's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import socket
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from homeassistant import bootstrap, loader
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant

from custom_components.fleet_metrics.const import CONF_KIND, DOMAIN, KIND_TICKRMETER
from custom_components.fleet_metrics.tickrmeter import TickrMeterRuntime
from tests.mosquitto import HAVE_MOSQUITTO, Mosquitto

from .fleet_stream import FleetStream, generate
from .raw_publisher import encode, publish

TARGET_FACTOR = 2.0  # HA's CPU per message against the runner's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_home_assistant(config_dir: Path) -> HomeAssistant:
    """Core, ``http`` (the integration depends on it) and the registries, no other
    integration: what is measured beyond the integration is Home Assistant's own floor."""
    hass = HomeAssistant(str(config_dir))
    loader.async_setup(hass)
    hass.config.skip_pip = True
    hass.config.internal_url = None
    config = {
        "homeassistant": {"time_zone": "UTC"},
        "http": {"server_host": ["127.0.0.1"], "server_port": free_port()},
    }
    started = await bootstrap.async_from_config_dict(config, hass)
    if started is None:
        raise SystemExit("Home Assistant did not start")
    await loader.async_get_custom_components(hass)
    await hass.async_start()
    return hass


async def add_fleet(hass: HomeAssistant, broker: Mosquitto) -> TickrMeterRuntime:
    entry = ConfigEntry(
        version=1,
        minor_version=1,
        domain=DOMAIN,
        title="TickrMeter fleet",
        data={CONF_KIND: KIND_TICKRMETER, CONF_HOST: "127.0.0.1", CONF_PORT: broker.port},
        options={},
        source="user",
        unique_id=f"127.0.0.1:{broker.port}/tickrmeter/STOCKPRICEUPDATE",
        discovery_keys={},
        subentries_data=None,
    )
    await hass.config_entries.async_add(entry)
    await hass.async_block_till_done()
    if entry.state is not ConfigEntryState.LOADED:
        raise SystemExit(f"the TickrMeter entry did not load: {entry.state} {entry.reason}")
    runtime = entry.runtime_data
    assert isinstance(runtime, TickrMeterRuntime)
    async with asyncio.timeout(10):
        while not runtime.coordinator.session.connected:  # noqa: ASYNC110 - a flag, no event
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the subscriptions go out right after CONNACK
    return runtime


def received(runtime: TickrMeterRuntime) -> int:
    return sum(runtime.coordinator.tracker.counts.received.values())


async def idle_cpu_per_second(seconds: float) -> float:
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


async def measure(
    runtime: TickrMeterRuntime, port: int, stream: FleetStream, rate: float, idle: float
) -> tuple[float, float, int]:
    """(CPU µs per message beyond idle, wall seconds, messages counted)."""
    packets = encode(stream.messages)
    before = received(runtime)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        await loop.run_in_executor(pool, time.sleep, 0)  # the child is up before timing
        cpu, wall = time.process_time(), time.perf_counter()
        await loop.run_in_executor(pool, publish, port, packets, rate)
        async with asyncio.timeout(120):
            while received(runtime) - before < len(packets):  # noqa: ASYNC110 - a counter
                await asyncio.sleep(0.01)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    got = received(runtime) - before
    return (cpu - idle * wall) / got * 1e6, wall, got


async def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("custom_components.fleet_metrics").setLevel(logging.ERROR)  # malformed
    # Expected here: an untested custom integration, no frontend build, no libturbojpeg.
    for name in ("homeassistant.loader", "homeassistant.setup", "homeassistant.components.camera",
                 "aiohttp_fast_zlib"):  # fmt: skip
        logging.getLogger(name).setLevel(logging.CRITICAL)

    def say(text: str) -> None:
        print(text, flush=True)

    stream = generate(args.messages, args.devices, args.known, args.seed)
    say(f"{len(stream.messages):,} messages ({dict(stream.by_kind)}), seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="fleet-metrics-ha-bench-") as workdir:
        broker = Mosquitto(Path(workdir))
        await broker.start()
        hass: HomeAssistant | None = None
        try:
            hass = await start_home_assistant(Path(workdir))  # config and broker share it
            runtime = await add_fleet(hass, broker)
            idle = await idle_cpu_per_second(args.idle)
            say(f"idle Home Assistant with the entry loaded: {idle * 1e3:.1f} ms CPU per second")
            for attempt in range(args.runs):
                per_message, wall, got = await measure(
                    runtime, broker.port, stream, args.rate, idle
                )
                say(
                    f"run {attempt + 1}: {got:,} messages in {wall:.1f} s "
                    f"({got / wall:,.0f} msg/s): {per_message:.1f} µs CPU per message"
                )
            devices = len(runtime.coordinator.tracker.fleet.devices)
            say(f"devices known: {devices:,}; malformed: {dict(stream.malformed)}")
            if args.runner_us:
                factor = per_message / args.runner_us
                verdict = "meets" if factor <= TARGET_FACTOR else "MISSES"
                say(f"against the runner's {args.runner_us:.1f} µs: {factor:.2f}x "
                    f"({verdict} the target <= {TARGET_FACTOR:.0f}x)")  # fmt: skip
                return 0 if factor <= TARGET_FACTOR else 1
            return 0
        finally:
            if hass is not None:
                await hass.async_stop()
            await broker.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--devices", type=int, default=8_000)
    parser.add_argument("--known", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5_000.0, help="messages per second")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle baseline")
    parser.add_argument("--runs", type=int, default=2, help="passes of the stream")
    parser.add_argument("--runner-us", type=float, help="the runner's µs per message, to compare")
    args = parser.parse_args()
    if not HAVE_MOSQUITTO:
        print("mosquitto is missing: install the Debian package mosquitto (.ci/run does)")
        return 2
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
