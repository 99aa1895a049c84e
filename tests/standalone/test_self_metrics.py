"""The runner's own metrics: rejections by why, the line protocol output and the dead letters."""

from __future__ import annotations

from pathlib import Path

import orjson
from fleet_metrics.core.config import validate
from fleet_metrics.runner import Runner

from tests.core.test_prometheus import promtool_check

from .runner_process import metric_value


async def test_rejections_output_and_dead_letters_are_exported(tmp_path: Path) -> None:
    dead_letter = tmp_path / "dead.jsonl"
    config = validate(
        {
            "prometheus": {"listen": ""},
            "line_protocol": {"output": "none"},
            "dead_letter": str(dead_letter),
            "sources": [
                {"kind": "demo", "name": "one", "interval": 60},
                {"kind": "demo", "name": "two", "interval": 60},
            ],
        }
    )
    runner = Runner(config)
    await runner.start()
    try:
        one = runner.supervisor.entries["one"].source
        for kind, count in (("json", 3), ("too_large", 1)):
            for _ in range(count):
                one.rejects.reject(kind, "bad", "tele/x/SENSOR", b"{")
        text = b"".join(runner.render_metrics()).decode()
    finally:
        await runner.stop()
    promtool_check(text)

    def rejected(source: str, why: str) -> float | None:
        return metric_value(
            text, "fleet_metrics_source_rejected_total", source=source, rejection=why
        )

    assert rejected("one", "json") == 3
    assert rejected("one", "too_large") == 1
    assert rejected("two", "json") is None  # only what happened is a series
    assert metric_value(text, "fleet_metrics_line_protocol_breaker_state", state="closed") == 1
    for state in ("open", "half_open"):
        assert metric_value(text, "fleet_metrics_line_protocol_breaker_state", state=state) == 0
    for name in ("lines_rejected", "retries", "splits", "breaker_opened"):
        assert metric_value(text, f"fleet_metrics_line_protocol_{name}_total") == 0
    assert metric_value(text, "fleet_metrics_dead_letter_records_total") == 4

    # The runner's stop flushed the dead-letter file: the four rejections are in it.
    records = [orjson.loads(line) for line in dead_letter.read_bytes().splitlines()]
    assert [(r["source"], r["kind"]) for r in records] == [("one", "json")] * 3 + [
        ("one", "too_large")
    ]
