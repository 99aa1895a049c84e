"""``--log-format json``: one complete JSON object per stderr line, whatever is logged."""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_metrics.core.log_context import context_for
from fleet_metrics.logs import JsonFormatter
from hypothesis import given, settings
from hypothesis import strategies as st

from .runner_process import RunnerProcess, write_config

KEYS = {"time", "level", "logger", "message"}


def record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger("fleet_metrics.test")
    made = logger.makeRecord(logger.name, logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def parsed(line: str) -> dict[str, Any]:
    assert "\n" not in line
    entry = json.loads(line)
    assert isinstance(entry, dict)
    assert entry.keys() >= KEYS
    time = datetime.fromisoformat(entry["time"])  # RFC 3339, UTC
    assert time.utcoffset() == UTC.utcoffset(None)
    return entry


@given(st.text(), st.lists(st.text() | st.integers() | st.floats(), max_size=3))
@settings(max_examples=300, deadline=None)
def test_any_message_is_one_json_line(text: str, args: list[object]) -> None:
    """Newlines, control characters and lone surrogates (undecodable topics) included."""
    made = record("%s" * len(args) + text.replace("%", "%%"), *args)
    entry = parsed(JsonFormatter().format(made))
    assert entry["message"] == made.getMessage()


def test_source_and_broker_come_from_the_task_context_or_the_call() -> None:
    formatter = JsonFormatter()
    plain = parsed(formatter.format(record("x")))
    assert "source" not in plain and "broker" not in plain
    in_source = context_for(source="roof").run(lambda: formatter.format(record("x")))
    assert parsed(in_source)["source"] == "roof"
    in_both = context_for(source="roof", broker="home").run(
        lambda: formatter.format(record("x", broker="other"))
    )
    assert (parsed(in_both)["source"], parsed(in_both)["broker"]) == ("roof", "other")


def test_an_exception_is_one_field() -> None:
    try:
        raise ValueError("deep\ninside")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    entry = parsed(JsonFormatter().format(made))
    assert entry["message"] == "failed"
    assert entry["exception"].startswith("Traceback (most recent call last):\n")
    assert entry["exception"].endswith("ValueError: deep\ninside")


async def test_the_runner_logs_json_lines(tmp_path: Path, processes: list[RunnerProcess]) -> None:
    crash = tmp_path / "crash"
    crash.touch()
    config = write_config(
        tmp_path / "config.toml",
        f'[[sources]]\nkind = "demo"\nname = "flaky"\ninterval = 0.05\ntrigger_file = "{crash}"\n',
    )
    runner = await RunnerProcess(
        "run", "-c", str(config), "--log-format", "json", "--log-level", "debug"
    ).start()
    processes.append(runner)
    await runner.wait_for(lambda: "source flaky failed" in runner.stderr)
    runner.signal(signal.SIGTERM)
    assert await runner.wait() == 0
    entries = [parsed(line) for line in runner.stderr_lines]
    failed = next(e for e in entries if e["message"].startswith("source flaky failed"))
    assert failed["level"] == "ERROR"
    assert failed["logger"] == "fleet_metrics.core.supervisor"
    assert failed["source"] == "flaky"
    assert "DemoCrash" in failed["exception"]
    started = next(e for e in entries if e["message"].startswith("started source flaky"))
    assert started["source"] == "flaky"
    assert any(e["message"].startswith("stopped;") for e in entries)
