"""Rejects: counted by kind, logged at most once per interval per kind, handed to the sink."""

from __future__ import annotations

import logging

import pytest

from custom_components.fleet_metrics.core.rejects import Rejected, Rejects


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_kind_is_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejects = Rejects("plugs", log_interval=60.0, clock=clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            rejects.reject("json", "not JSON", "tele/a/SENSOR", b"{")
        rejects.reject("cap", "too many devices", "tele/b/SENSOR")
        clock.now += 61
        rejects.reject("json", "not JSON", "tele/c/SENSOR", b"[")
    assert rejects.by_kind == {"json": 6, "cap": 1}
    assert rejects.total == 7
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert messages[0] == "plugs: skipped a message on tele/a/SENSOR: not JSON"
    assert messages[1] == "plugs: skipped a message on tele/b/SENSOR: too many devices"
    assert messages[2].endswith("not JSON (4 more since the last report)")


def test_the_sink_gets_every_rejection_and_its_failure_stays_inside() -> None:
    seen: list[Rejected] = []
    rejects = Rejects("fleet", seen.append)
    rejects.reject("name", "symbol too long", "STOCKPRICEUPDATE", b"x" * 10)
    assert seen == [Rejected("fleet", "name", "symbol too long", "STOCKPRICEUPDATE", b"x" * 10)]

    def broken(rejected: Rejected) -> None:
        raise OSError("disk full")

    failing = Rejects("fleet", broken)
    failing.reject("json", "not JSON")  # must not raise
    assert failing.total == 1


@pytest.mark.parametrize(
    "error",
    [RecursionError("maximum recursion depth exceeded"), TypeError("odd"), ValueError("bad")],
)
def test_guard_turns_any_exception_into_a_counted_rejection(error: Exception) -> None:
    seen: list[Rejected] = []
    rejects = Rejects("plugs", seen.append)
    delivered: list[str] = []

    def handler(topic: str, payload: bytes) -> None:
        if payload == b"boom":
            raise error
        delivered.append(topic)

    guarded = rejects.guard(handler)
    guarded("a", b"ok")
    guarded("b", b"boom")
    guarded("c", b"ok")
    assert delivered == ["a", "c"]
    assert rejects.by_kind == {"exception": 1}
    assert seen[0].topic == "b"
    assert seen[0].payload == b"boom"
    assert seen[0].reason.startswith(type(error).__name__)
