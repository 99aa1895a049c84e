"""The host agent's own numbers: ``python -m bench.agent_host [--scaled 120] [--idle 60]``.

1. CPU time of one fast collection here (collect + number + encode + self-check), in-process.
2. RSS of a real ``fleet-metrics agent`` process pushing to a real WebSocket server.
3. CPU of that process over idle minutes at the default intervals (fast 30 s, medium 300 s,
   slow 1800 s). Waiting five real minutes per figure is too slow for a routine bench, so it is
   measured in two runs and extrapolated: run A with every interval divided by 30 (fast 1 s,
   medium 10 s, slow 60 s) for ``--scaled`` seconds, where collection work is 30x the default;
   run B with intervals of a day (one collection at start, then only the connection's
   heartbeats and timers) for ``--idle`` seconds, the part that does not scale. Estimate at the
   defaults = B + (A - B) / 30, in % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from custom_components.fleet_metrics.core.agent.agent import collect
from custom_components.fleet_metrics.core.agent.collectors import CollectorSettings, build
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from tests.core.agent.agent_fake_server import TOKEN, FakeServer
from tests.standalone.runner_process import RunnerProcess

SCALE = 30
MODULE = "fleet_metrics.agent"  # the agent's own entry point, without the runner's imports
TARGET_COLLECT_MS = 20.0
TARGET_RSS_MB = 40.0
TARGET_CPU_PERCENT = 0.1


def one_fast_collection(rounds: int) -> tuple[float, float, int]:
    """Median and max CPU ms of one fast tier run plus its outbox add; samples per batch."""
    tiers = build({}, CollectorSettings(agent_version="bench"))
    outbox = Outbox(10_000)
    outbox.use_series(True)  # as against this release's servers: batches of rows
    times = []
    samples = 0
    for _ in range(rounds + 1):
        started = time.process_time()
        batch = collect(tiers["fast"], time.time_ns())
        outbox.add(time.time(), batch)
        times.append((time.process_time() - started) * 1000)
        outbox.ack(outbox.next_seq - 1)
        samples = len(batch)
    times = times[1:]  # the first pays for imports and caches
    return statistics.median(times), max(times), samples


async def agent_process(
    tmp: Path, intervals: tuple[float, float, float], seconds: float, module: str, warm: int = 3
) -> tuple[float, float, float, int]:
    """(RSS MB, USS MB, CPU % of a core over ``seconds``, batches received); measured once
    the server has ``warm`` batches."""
    server = await FakeServer(series=True).start()
    token = tmp / "token"
    token.write_text(TOKEN, encoding="utf-8")
    config = tmp / "agent.toml"
    fast, medium, slow = intervals
    config.write_text(
        f'[[servers]]\nurl = "{server.url}"\ntoken_file = "{token}"\n'
        f"[intervals]\nfast = {fast}\nmedium = {medium}\nslow = {slow}\n",
        encoding="utf-8",
    )
    args = ["agent"] if module == "fleet_metrics" else []
    process = await RunnerProcess(*args, "-c", str(config), module=module).start()
    try:
        await process.wait_for(lambda: len(server.batches) >= warm, timeout=30)
        await asyncio.sleep(2)  # start-up done: tiers ran once, the connection is idle
        watched = psutil.Process(process.pid)
        before = watched.cpu_times()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        after = watched.cpu_times()
        elapsed = time.monotonic() - started
        memory = watched.memory_full_info()
        rss, uss = memory.rss / 1e6, memory.uss / 1e6
        used = (after.user - before.user) + (after.system - before.system)
        return rss, uss, 100 * used / elapsed, len(server.batches)
    finally:
        await process.kill()
        await server.stop()


async def main(scaled: float, idle: float, rounds: int, real: float) -> int:
    misses = []
    median_ms, max_ms, samples = one_fast_collection(rounds)
    print(f"one fast collection ({samples} samples), {rounds} rounds:")
    print(f"  CPU median {median_ms:.2f} ms, max {max_ms:.2f} ms (target <= {TARGET_COLLECT_MS})")
    if median_ms > TARGET_COLLECT_MS:
        misses.append("fast collection CPU")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        scaled_intervals = (30 / SCALE, 300 / SCALE, 1800 / SCALE)
        rss, uss, cpu_a, got = await agent_process(tmp, scaled_intervals, scaled, MODULE)
        print(
            f"run A: intervals {scaled_intervals} s for {scaled:.0f} s: CPU {cpu_a:.3f} % "
            f"of a core, {got} batches received, RSS {rss:.1f} MB"
        )
        rss_cli, uss_cli, _, _ = await agent_process(tmp, (86400,) * 3, 1, "fleet_metrics")
        print(
            f"as `fleet-metrics agent` (the CLI module imports the runner too): "
            f"RSS {rss_cli:.1f} MB, USS {uss_cli:.1f} MB"
        )
        rss_b, uss_b, cpu_b, _ = await agent_process(tmp, (86400, 86400, 86400), idle, MODULE)
        print(
            f"run B: intervals of a day for {idle:.0f} s: CPU {cpu_b:.4f} % of a core, "
            f"RSS {rss_b:.1f} MB"
        )
        if real > 0:  # the figure itself, as users run it: the CLI at the default intervals
            rss_r, uss_r, cpu_r, got = await agent_process(
                tmp, (30.0, 300.0, 1800.0), real, "fleet_metrics", warm=1
            )
            print(
                f"run C: `fleet-metrics agent` at the default intervals for {real:.0f} s: "
                f"CPU {cpu_r:.4f} % of a core (target <= {TARGET_CPU_PERCENT}), {got} batches, "
                f"RSS {rss_r:.1f} MB, USS {uss_r:.1f} MB"
            )
            if cpu_r > TARGET_CPU_PERCENT:
                misses.append("idle CPU over the real run")
    estimate = cpu_b + max(0.0, cpu_a - cpu_b) / SCALE
    print(
        f"agent as `python -m fleet_metrics.agent`: RSS {max(rss, rss_b):.1f} MB "
        f"(target <= {TARGET_RSS_MB}), USS (its own pages, shared libraries not counted) "
        f"{max(uss, uss_b):.1f} MB"
    )
    print(
        f"CPU at default intervals, B + (A - B) / {SCALE}: {estimate:.4f} % of a core "
        f"(target <= {TARGET_CPU_PERCENT})"
    )
    if max(rss, rss_b) > TARGET_RSS_MB:
        misses.append("RSS")
    if estimate > TARGET_CPU_PERCENT:
        misses.append("idle CPU")
    print("all targets met" if not misses else f"missed: {', '.join(misses)}")
    return 1 if misses else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scaled", type=float, default=120.0, help="seconds of run A")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of run B")
    parser.add_argument("--rounds", type=int, default=200, help="fast collections timed")
    parser.add_argument(
        "--real", type=float, default=0.0, help="seconds of run C at the default intervals (300)"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.scaled, args.idle, args.rounds, args.real)))
