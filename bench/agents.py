"""1,000 host agents against the real runner: ``python -m bench.agents [--hosts 1000]``.

The runner is the real ``fleet-metrics run`` process with an ``agents`` source and a line
protocol file; the agents are another process (one asyncio loop, one WebSocket each), every
one sending a batch a second shaped like a real fast-tier collection of a mid-size Proxmox
host (``--samples``, about 40: CPU total and per CPU, load, memory, swap, a dozen network
interfaces, ten disks, the collector timings), each batch numbered and acked as the
protocol says. Figures, each against the issue's target:

- batches lost or applied twice: every batch an agent sent must be in the line protocol file
  exactly once (one ``system`` line per batch, told apart by its timestamp), and acked;
- server CPU per batch: the runner's user+system CPU (``/proc``) over a steady window without
  a ``/metrics`` scrape in it, divided by the batches applied meanwhile (the runner's own
  counter's rate, from a scrape before and one after the window, times the window);
- runner RSS at the end (and its peak);
- ``/metrics`` render time per sample with every host's series held: the runner's own
  ``fleet_metrics_scrape_render_seconds_total`` over its renders, per exposed sample.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.measure import Report, Runner
from custom_components.fleet_metrics.core.agent.protocol import MAX_MESSAGE_BYTES, SERIES
from custom_components.fleet_metrics.core.sources.agents.store import HostStore
from tests.standalone.runner_process import RunnerProcess, metric_value

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest",
             "guest_nice")  # fmt: skip
NET_FIELDS = ("receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets",
              "receive_errs", "transmit_errs", "receive_drop", "transmit_drop")  # fmt: skip
DISK_INTS = ("read_bytes", "written_bytes", "reads_completed", "writes_completed")
DISK_TIMES = ("read_time_seconds", "write_time_seconds", "io_time_seconds")
COLLECTORS = ("cpu", "loadavg", "meminfo", "netdev", "diskstats")

TARGET_CPU_US = 150.0
TARGET_RSS_MB = 150.0
TARGET_RENDER_US = 5.0


def fast_batch(seq: int, now: float, cpus: int, nets: int, disks: int) -> list[dict[str, Any]]:
    """One fast-tier collection in wire form, as the agent's collectors name it."""
    ns = int(now * 1e9)
    grow = float(seq)
    samples: list[dict[str, Any]] = []
    for cpu in ["total", *map(str, range(cpus))]:  # per-CPU only behind the agent's switch
        scale = cpus if cpu == "total" else 1
        fields = {mode: round(scale * (1000.0 * (i + 1) + grow * (i + 1) * 0.01), 2)
                  for i, mode in enumerate(CPU_MODES)}  # fmt: skip
        samples.append({"m": "cpu", "t": {"cpu": cpu}, "f": fields, "ts": ns, "c": CPU_MODES})
    samples.append({"m": "load", "t": {}, "f": {"load1": 1.25, "load5": 0.98, "load15": 0.75},
                    "ts": ns})  # fmt: skip
    samples.append({"m": "memory", "t": {}, "ts": ns, "f": {
        "total_bytes": 67_319_000_000, "available_bytes": 40_000_000_000 - seq,
        "used_bytes": 25_000_000_000 + seq, "free_bytes": 2_000_000_000,
        "buffers_bytes": 300_000_000, "cached_bytes": 12_000_000_000}})  # fmt: skip
    samples.append({"m": "swap", "t": {}, "ts": ns, "c": ["sin_bytes", "sout_bytes"], "f": {
        "total_bytes": 8_589_930_496, "free_bytes": 8_588_881_920, "used_bytes": 1_048_576,
        "sin_bytes": 4096, "sout_bytes": 8192}})  # fmt: skip
    for n in range(nets):
        fields = {name: 1_000_000 * (n + 1) + seq * (i + 1) for i, name in enumerate(NET_FIELDS)}
        samples.append({"m": "network", "t": {"device": f"vmbr{n}"}, "f": fields, "ts": ns,
                        "c": NET_FIELDS})  # fmt: skip
    for d in range(disks):
        fields = {name: 5_000_000 * (d + 1) + seq * 4096 for name in DISK_INTS}
        fields.update({name: 100.0 + grow * 0.001 for name in DISK_TIMES})
        samples.append({"m": "disk", "t": {"device": f"nvme{d}n1"}, "f": fields, "ts": ns,
                        "c": DISK_INTS + DISK_TIMES})  # fmt: skip
    for name in COLLECTORS:
        samples.append({"m": "collector", "t": {"collector": name}, "ts": ns,
                        "f": {"success": 1, "duration_seconds": 0.0004}})  # fmt: skip
    return samples


def batch_shape(samples: int, per_cpu: int = 0) -> tuple[int, int, int]:
    """(per-CPU readings, network interfaces, disks) giving ``samples`` samples. The agent's
    default sums the CPUs (per-CPU is a switch), so the rest are devices: a Proxmox host's
    bridges, bonds and NICs after the guest interfaces are skipped, and its disks."""
    fixed = 1 + 3 + len(COLLECTORS) + per_cpu  # cpu total, load+memory+swap, collectors
    left = max(0, samples - fixed)
    nets = left * 55 // 100
    return per_cpu, nets, left - nets


def _rows(
    samples: list[dict[str, Any]], ids: dict[tuple[object, ...], int], declare: list[list[Any]]
) -> list[list[Any]]:
    """The wire samples as rows of declared series, as the agent's outbox writes them; the
    series new on this connection are appended to ``declare``."""
    rows = []
    for sample in samples:
        fields, counters = sample["f"], sample.get("c", ())
        key = (sample["m"], *sample["t"].items(), None, *fields, *counters)
        sid = ids.get(key)
        if sid is None:
            sid = ids[key] = len(ids)
            declare.append([sid, sample["m"], sample["t"], list(fields), sorted(counters)])
        rows.append([sid, sample["ts"], *fields.values()])
    return rows


# --- the agents' process ---------------------------------------------------------------


@dataclass(frozen=True)
class Pace:
    """How the agents send: full samples or rows of declared series, and how often."""

    full: bool = False
    interval: float = 1.0


class FleetAgent:
    def __init__(self, name: str, token: str) -> None:
        self.name = name
        self.token = token
        self.sent = 0
        self.acked = 0
        self.refused: int | None = None


async def _agent(
    agent: FleetAgent, session: aiohttp.ClientSession, url: str, shape: tuple[int, int, int],
    start: float, stop: float, connected: asyncio.Event | None, pace: Pace,
) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with session.ws_connect(url, headers=headers, max_msg_size=MAX_MESSAGE_BYTES) as ws:
        offered = [] if pace.full else [SERIES]
        hello = {"type": "hello", "v": 1, "host": agent.name, "agent_version": "bench",
                 "boot_id": "bench-boot", "capabilities": offered}  # fmt: skip
        await ws.send_bytes(orjson.dumps(hello))
        welcome = await ws.receive()
        if welcome.type != aiohttp.WSMsgType.TEXT:
            agent.refused = ws.close_code
            return
        series = not pace.full and SERIES in orjson.loads(welcome.data).get("capabilities", [])
        ids: dict[tuple[object, ...], int] = {}
        if connected is not None:
            connected.set()

        async def read_acks() -> None:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    agent.acked = max(agent.acked, orjson.loads(message.data)["seq"])

        reader = asyncio.create_task(read_acks())
        loop = asyncio.get_running_loop()
        next_at = start
        while next_at < stop:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            agent.sent += 1
            samples = fast_batch(agent.sent, time.time(), *shape)
            batch = {"type": "batch", "v": 1, "seq": agent.sent, "time": time.time()}
            if series:
                batch["rows"] = _rows(samples, ids, declare := [])
                if declare:
                    await ws.send_str(
                        orjson.dumps({"type": "series", "v": 1, "series": declare}).decode()
                    )
            else:
                batch["samples"] = samples
            await ws.send_str(orjson.dumps(batch).decode())
            next_at += pace.interval
        # Acks follow the runner's flush: wait for the last one.
        async with asyncio.timeout(30):
            while agent.acked < agent.sent:  # noqa: ASYNC110 - acks are counted by the reader
                await asyncio.sleep(0.1)
        reader.cancel()


async def _fleet(
    url: str, tokens: dict[str, str], samples: int, seconds: float, per_cpu: int, pace: Pace,
    pipe: Connection,
) -> None:  # fmt: skip
    agents = [FleetAgent(name, token) for name, token in tokens.items()]
    shape = batch_shape(samples, per_cpu)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        loop = asyncio.get_running_loop()
        # Connect in waves (a real fleet does not dial in within one millisecond either);
        # each agent then sends on its own phase within the second.
        start = loop.time() + 2.0 + len(agents) / 400
        stop = start + seconds
        tasks = []
        events = []
        for index, agent in enumerate(agents):
            event = asyncio.Event()
            events.append(event)
            phase = start + random.random()
            run = _agent(agent, session, url, shape, phase, stop + phase - start, event, pace)
            tasks.append(asyncio.create_task(run))
            if index % 50 == 49:
                await asyncio.sleep(0.05)
        pipe.send(("connecting", len(agents)))
        await asyncio.gather(*(event.wait() for event in events))
        pipe.send(("connected", loop.time() < start))
        results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    pipe.send(("done", {a.name: (a.sent, a.acked, a.refused) for a in agents}, dict(errors)))


def fleet_process(
    url: str, tokens: dict[str, str], samples: int, seconds: float, per_cpu: int, pace: Pace,
    pipe: Connection,
) -> None:  # fmt: skip
    asyncio.run(_fleet(url, tokens, samples, seconds, per_cpu, pace, pipe))


# --- the bench ---------------------------------------------------------------------------


def count_batches(output: Path) -> dict[str, Counter[str]]:
    """host -> timestamp -> how many ``system`` lines (one per batch) carry it."""
    seen: dict[str, Counter[str]] = {}
    with output.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("system,host="):
                series, _, rest = line.partition(" ")
                timestamp = rest.rsplit(" ", 1)[1]
                seen.setdefault(series.removeprefix("system,host="), Counter())[timestamp] += 1
    return seen


async def _recv(pipe: Connection, fleet: mp.process.BaseProcess) -> Any:
    while not pipe.poll():
        if not fleet.is_alive():
            raise RuntimeError(f"the agents' process ended (exit code {fleet.exitcode})")
        await asyncio.sleep(0.05)
    return pipe.recv()


async def run(
    hosts: int,
    seconds: float,
    samples: int,
    flush: float,
    per_cpu: int,
    profile: str | None,
    pace: Pace | None = None,
) -> int:
    pace = pace or Pace()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp_dir:
        tmp = Path(tmp_dir)
        database = tmp / "agents.sqlite"
        output = tmp / "out.lp"
        store = HostStore(database)
        tokens = {f"h{i:04d}": store.add(f"h{i:04d}") for i in range(hosts)}
        store.close()
        config = tmp / "config.toml"
        config.write_text(
            f"""
[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
output = "file:{output}"
flush_interval = {flush}

[[sources]]
kind = "agents"
name = "agents"
database = "{database}"
""",
            encoding="utf-8",
        )
        if profile:  # the runner under cProfile: its figures are the profiler's, not the bench's
            args = ("-o", profile, "-m", "fleet_metrics", "run", "-c", str(config))
            process = await RunnerProcess(*args, module="cProfile").start()
        else:
            process = await RunnerProcess("run", "-c", str(config)).start()
        try:
            await process.wait_for(lambda: process.port is not None)
            runner = Runner(process)
            url = f"ws://127.0.0.1:{process.port}/api/agent"
            parent, child = mp.Pipe()
            fleet = mp.get_context("spawn").Process(
                target=fleet_process,
                args=(url, tokens, samples, seconds, per_cpu, pace, child),
            )
            fleet.start()
            shape = batch_shape(samples, per_cpu)
            per_batch = len(fast_batch(1, 0.0, *shape))
            form = "full samples" if pace.full else "rows of declared series"
            report.say(f"{hosts} agents, a {per_batch}-sample batch each every {pace.interval:g} s"
                       f" for {seconds:.0f} s ({form});"
                       f" runner flush_interval {flush} s")  # fmt: skip
            await _recv(parent, fleet)
            _, in_time = await _recv(parent, fleet)
            if not in_time:
                report.say("  (connecting took longer than the head start)")
            # The steady window: from a few seconds in until shortly before the senders stop,
            # with no scrape inside it (a 19 MB render and its gzip would be most of it). The
            # runner's counter is read by a scrape before and one after; the batches applied
            # within the window are the rate between them times the window.
            await asyncio.sleep(3.0)
            scraped0 = time.monotonic()
            batches0 = _batches(await runner.scrape())
            await asyncio.sleep(1.0)  # that scrape's work (render, gzip thread) is over
            cpu0, started = runner.cpu_seconds(), time.monotonic()
            window = max(1.0, seconds - 7.0)
            await asyncio.sleep(window)
            cpu1, window = runner.cpu_seconds(), time.monotonic() - started
            steady_rss = runner.rss_mb()  # every series held, one /metrics render so far
            scraped1 = time.monotonic()
            batches1 = _batches(await runner.scrape())
            rate = (batches1 - batches0) / (scraped1 - scraped0)
            _, results, errors = await _recv(parent, fleet)
            fleet.join(10)
            rss, peak = runner.rss_mb(), _peak_rss_mb(process.pid)
            render_us, exposed = await _render_per_sample(runner)
            last_text = await runner.scrape()
            online = metric_value(last_text, "fleet_metrics_agents_hosts_online")
            dropped = metric_value(last_text, "fleet_metrics_line_protocol_dropped_lines_total")
            process.signal(__import__("signal").SIGTERM)
            await process.wait(30)
        finally:
            await process.kill()
        noted = [line for line in process.stderr_lines if "INFO" not in line or "pausing" in line]
        for line in noted[-15:]:  # what the runner said went wrong, if anything
            report.say(f"  runner: {line[:200]}")
        sent = sum(s for s, _, _ in results.values())
        unacked = sum(s - a for s, a, _ in results.values())
        refused = sum(1 for _, _, r in results.values() if r is not None)
        seen = count_batches(output)
        lost = duplicated = 0
        for name, (count, _, _) in results.items():
            stamps = seen.get(name, Counter())
            lost += max(0, count - len(stamps))
            duplicated += sum(n - 1 for n in stamps.values())
        report.say(
            f"  agents online during the run: {online:.0f}; batches sent: {sent:,}; "
            f"unacked at the end: {unacked}; refused: {refused}; errors: {errors or 0}; "
            f"lines the output dropped: {dropped or 0:.0f}"
        )
        report.check("batches lost", lost, "", 0)
        report.check("batches applied twice", duplicated, "", 0)
        applied = rate * window
        report.value("batches applied per second (steady)", rate, "")
        report.check("server CPU per batch", 1e6 * (cpu1 - cpu0) / max(1.0, applied), "µs",
                     TARGET_CPU_US)  # fmt: skip
        report.value("server CPU over the window", 100 * (cpu1 - cpu0) / window, "% of a core")
        report.value("runner RSS in the steady window (after 1 scrape)", steady_rss, "MB")
        report.check("runner RSS at the end", rss, "MB", TARGET_RSS_MB)
        report.value("runner peak RSS (VmHWM)", peak, "MB")
        report.value("samples on /metrics", exposed, "")
        report.check("/metrics render per sample", render_us, "µs", TARGET_RENDER_US)
    for label in ("batches lost", "batches applied twice", "server CPU per batch",
                  "runner RSS at the end", "/metrics render per sample"):  # fmt: skip
        report.say(f"{'FAIL' if label in report.misses else 'PASS'}  {label}")
    return 1 if report.misses or unacked or refused else 0


def _batches(text: str) -> int:
    return int(metric_value(text, "fleet_metrics_agents_batches_received_total") or 0)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _render_per_sample(runner: Runner, rounds: int = 5) -> tuple[float, int]:
    """The runner's own render time per render, per sample exposed (µs)."""
    before = await runner.scrape()
    seconds0 = metric_value(before, "fleet_metrics_scrape_render_seconds_total") or 0.0
    renders0 = metric_value(before, "fleet_metrics_scrape_renders_total") or 0.0
    text = before
    for _ in range(rounds):
        text = await runner.scrape()
        await asyncio.sleep(0.2)
    seconds1 = metric_value(text, "fleet_metrics_scrape_render_seconds_total") or 0.0
    renders1 = metric_value(text, "fleet_metrics_scrape_renders_total") or 0.0
    exposed = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    per_render = (seconds1 - seconds0) / max(1.0, renders1 - renders0)
    return 1e6 * per_render / max(1, exposed), exposed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--samples", type=int, default=40, help="samples per batch")
    parser.add_argument("--flush", type=float, default=1.0, help="runner flush_interval")
    parser.add_argument("--per-cpu", type=int, default=0, help="per-CPU readings per batch")
    parser.add_argument("--profile", metavar="FILE", help="run the runner under cProfile into FILE")
    parser.add_argument(
        "--full", action="store_true", help="agents send full samples (no series capability)"
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between batches")
    args = parser.parse_args()
    return asyncio.run(
        run(
            args.hosts,
            args.seconds,
            args.samples,
            args.flush,
            args.per_cpu,
            args.profile,
            Pace(args.full, args.interval),
        )
    )


if __name__ == "__main__":
    sys.exit(main())
