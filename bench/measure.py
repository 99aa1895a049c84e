"""What every ``make bench`` scenario shares: a report of figures against targets, and the
real runner process watched from outside (CPU and RSS from ``/proc``, counters from
``/metrics``)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import psutil

from tests.standalone.runner_process import RunnerProcess, metric_value

KINDS = ("request", "response", "status", "boot", "stream")


class Report:
    def __init__(self) -> None:
        self.misses: list[str] = []

    @staticmethod
    def say(text: str) -> None:
        print(text, flush=True)

    def value(self, label: str, value: float, unit: str) -> None:
        text = f"{value:>12,}" if isinstance(value, int) else f"{value:>12,.2f}"
        self.say(f"  {label:<50} {text} {unit}")

    def check(
        self, label: str, value: float, unit: str, target: float, higher: bool = False
    ) -> None:
        ok = value >= target if higher else value <= target
        if not ok:
            self.misses.append(label.strip())
        bound = ">=" if higher else "<="
        verdict = "meets target" if ok else "MISSES target"
        self.say(f"  {label:<50} {value:>12,.2f} {unit:<6} ({verdict} {bound} {target:,.0f})")


class Runner:
    """The real ``fleet-metrics run`` process, watched from outside."""

    def __init__(self, process: RunnerProcess) -> None:
        self.process = process
        self.stats = psutil.Process(process.pid)

    def cpu_seconds(self) -> float:
        times = self.stats.cpu_times()
        return float(times.user + times.system)

    def rss_mb(self) -> float:
        return float(self.stats.memory_info().rss / 2**20)

    async def scrape(self) -> str:
        status, text = await self.process.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return text

    async def received(self) -> int:
        text = await self.scrape()
        return int(metric_value(text, "fleet_metrics_mqtt_messages_total", broker="bench") or 0)

    async def drained(self, expected: int, quiet: float = 3.0) -> tuple[int, float]:
        """(messages received, when the last one was seen) once nothing new came for ``quiet`` s."""
        count, seen = await self.received(), time.perf_counter()
        while count < expected and time.perf_counter() - seen < quiet:
            await asyncio.sleep(0.05)
            if (now := await self.received()) != count:
                count, seen = now, time.perf_counter()
        return count, seen

    async def kind_counts(self, expected: int) -> tuple[Counter[str], Counter[str]]:
        """The source's own counters by message kind (they move on its 1 s tick)."""
        received: Counter[str] = Counter()
        malformed: Counter[str] = Counter()
        for _ in range(20):
            text = await self.scrape()
            for kind in KINDS:
                value = metric_value(text, "tickrmeter_messages_received_total", kind=kind)
                received[kind] = int(value or 0)
                value = metric_value(text, "tickrmeter_messages_malformed_total", kind=kind)
                malformed[kind] = int(value or 0)
            if received.total() >= expected:
                break
            await asyncio.sleep(0.5)
        return received, malformed
