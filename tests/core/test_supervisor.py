from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from custom_components.fleet_metrics.core import log_context
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.source import Emit, Source
from custom_components.fleet_metrics.core.supervisor import Supervisor


class Ticker(Source):
    kind = "ticker"

    async def run(self, emit: Emit) -> None:
        n = 0
        while True:
            n += 1
            emit(Sample("tick", {"source": self.name}, {"n": n}))
            await asyncio.sleep(0.01)


class Crasher(Source):
    kind = "crasher"
    runs = 0
    closed = 0

    async def run(self, emit: Emit) -> None:
        type(self).runs += 1
        await asyncio.sleep(0.005)
        raise RuntimeError("boom")

    async def close(self) -> None:
        type(self).closed += 1


def fast_backoff() -> Backoff:
    return Backoff(initial=0.01, maximum=0.02)


def test_backoff_grows_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0)
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


async def test_a_crashing_source_restarts_without_disturbing_another() -> None:
    seen: list[Sample] = []
    supervisor = Supervisor(seen.append, backoff_factory=fast_backoff)
    supervisor.start(Ticker("steady", {}))
    supervisor.start(Crasher("flaky", {}))
    await asyncio.sleep(0.3)
    steady = supervisor.entries["steady"]
    flaky = supervisor.entries["flaky"]
    assert steady.restarts == 0
    assert flaky.restarts >= 3
    assert Crasher.runs == flaky.restarts + (1 if Crasher.runs > flaky.restarts else 0)
    assert Crasher.closed >= flaky.restarts
    assert flaky.last_error == "RuntimeError: boom"
    ticks = [s.fields["n"] for s in seen if s.tags["source"] == "steady"]
    # The steady source counted on without a gap while the other one kept crashing.
    assert ticks == list(range(1, len(ticks) + 1))
    assert len(ticks) >= 10
    await supervisor.stop_all()
    assert supervisor.entries == {}


async def test_stop_cancels_only_that_source() -> None:
    supervisor = Supervisor(lambda _: None)
    supervisor.start(Ticker("a", {}))
    supervisor.start(Ticker("b", {}))
    await supervisor.stop("a")
    assert set(supervisor.entries) == {"b"}
    task = supervisor.entries["b"].task
    assert task is not None and not task.done()
    await supervisor.stop_all()


async def test_starting_a_name_twice_is_refused() -> None:
    supervisor = Supervisor(lambda _: None)
    supervisor.start(Ticker("a", {}))
    try:
        with pytest.raises(ValueError, match="already running"):
            supervisor.start(Ticker("a", {}))
    finally:
        await supervisor.stop_all()


class Quiet(Source):
    """Fails with an exception that has no message, in a task of its own."""

    kind = "quiet"
    seen: ClassVar[list[dict[str, str]]] = []

    async def run(self, emit: Emit) -> None:
        async def helper() -> None:
            type(self).seen.append(log_context.current())

        type(self).seen.append(log_context.current())
        await asyncio.create_task(helper())
        raise TimeoutError


async def test_a_source_runs_in_a_log_context_that_names_it() -> None:
    """What a source logs, directly or from a task it starts, is tagged with its name; an
    exception without a message is still described."""
    supervisor = Supervisor(lambda _: None, backoff_factory=fast_backoff)
    supervisor.start(Quiet("roof", {}))
    await asyncio.sleep(0.05)
    entry = supervisor.entries["roof"]
    await supervisor.stop_all()
    assert Quiet.seen[:2] == [{"source": "roof"}, {"source": "roof"}]
    assert log_context.current() == {}
    assert entry.last_error == "TimeoutError: timed out"
