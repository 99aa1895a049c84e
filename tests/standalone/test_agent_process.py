"""``fleet-metrics agent`` as a real process: a bad config exits 2 with one line, a running
agent pushes to a real WebSocket server, and SIGTERM or SIGINT end it cleanly with 0."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.core.agent.agent_fake_server import TOKEN, FakeServer
from tests.standalone.runner_process import RunnerProcess


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[[servers]]\nurl = "http://x/api/agent"\ntoken = "t"\n', "servers[0].url"),
        (
            f'[[servers]]\nurl = "ws://x/api/agent?token={TOKEN}"\ntoken = "{TOKEN}"\n',
            "servers[0].url",
        ),
        (
            '[[servers]]\nurl = "ws://x/api/agent"\ntoken_file = "/nonexistent/t"\n',
            "servers[0].token_file",
        ),
        (
            f'[[servers]]\nurl = "ws://x/api/agent"\ntoken = "{TOKEN}"\n[intervals]\nfast = 0\n',
            "intervals.fast",
        ),
        ("servers = [", "agent.toml"),
    ],
)
async def test_a_bad_config_exits_2_with_one_line_naming_the_key(
    tmp_path: Path, processes: list[RunnerProcess], body: str, key: str
) -> None:
    config = write(tmp_path / "agent.toml", body)
    process = await RunnerProcess("agent", "-c", str(config)).start()
    processes.append(process)
    assert await process.wait() == 2
    assert process.stdout_lines == []
    assert len(process.stderr_lines) == 1, process.stderr
    assert process.stderr_lines[0].startswith("fleet-metrics agent: config error: ")
    assert key in process.stderr_lines[0]
    assert TOKEN not in process.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_agent_pushes_and_stops_cleanly_on_a_signal(
    tmp_path: Path, processes: list[RunnerProcess], sig: signal.Signals
) -> None:
    server = await FakeServer().start()
    token_file = write(tmp_path / "token", TOKEN + "\n")
    config = write(
        tmp_path / "agent.toml",
        f"""
host = "pve-test"
[[servers]]
url = "{server.url}"
token_file = "{token_file}"
[intervals]
fast = 1
""",
    )
    process = await RunnerProcess("agent", "-c", str(config), "--log-level", "info").start()
    processes.append(process)
    try:
        await process.wait_for(lambda: len(server.batches) >= 4, timeout=15)
        process.signal(sig)
        assert await process.wait() == 0, process.stderr
    finally:
        await server.stop()
    assert [hello.host for hello in server.hellos] == ["pve-test"]
    assert server.seqs() == list(range(1, len(server.batches) + 1))
    measurements = {s.measurement for b in server.batches for s in b.samples}
    assert {"cpu", "load", "memory", "filesystem", "host", "collector"} <= measurements
    assert "agent stopped" in process.stderr
    assert "Traceback" not in process.stderr
    assert TOKEN not in process.stderr
