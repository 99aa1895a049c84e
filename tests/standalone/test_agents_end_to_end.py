"""Host agents against a real runner process: nothing lost, nothing applied twice.

The agent is the real ``AgentClient`` with its real ``Outbox`` (in this process), the server
the real ``fleet-metrics run`` with an ``agents`` source, its token from the real
``fleet-metrics hosts add``. The runner is stopped (SIGTERM) and killed (SIGKILL) and
started again on the same database while the agent keeps producing a batch every 0.2 s;
every batch carries its own number, so the line protocol file shows exactly what arrived.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from custom_components.fleet_metrics.core.agent.client import AgentClient, ClientTiming
from custom_components.fleet_metrics.core.agent.config import ServerConfig
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import CLOSE_NOT_AUTHORISED, Hello
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.sample import Sample
from tests.standalone.runner_process import RunnerProcess, metric_value

INTERVAL = 0.2  # one batch every INTERVAL seconds
FLUSH = 0.2  # the runner's line protocol flush interval: acks follow each flush


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Setup:
    config: Path
    database: Path
    output: Path
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/agent"


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    port = _free_port()  # fixed: the agent reconnects to the same address after a restart
    database = tmp_path / "agents.sqlite"
    output = tmp_path / "out.lp"
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[prometheus]
listen = "127.0.0.1:{port}"

[line_protocol]
output = "file:{output}"
flush_interval = {FLUSH}

[[sources]]
kind = "agents"
name = "agents"
database = "{database}"
grace = 5
poll_interval = 0.2
""",
        encoding="utf-8",
    )
    return Setup(config, database, output, port)


def hosts(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleet_metrics", "hosts", *args, "-c", str(setup.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def add_host(setup: Setup, name: str) -> str:
    done = hosts(setup, "add", name)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


class Agent:
    """The real client and outbox; ``produce`` adds batch n = 1, 2, 3... every INTERVAL."""

    def __init__(self, url: str, host: str, token: str) -> None:
        self.outbox = Outbox(10_000, name=url)
        timing = ClientTiming(
            heartbeat=5.0,
            connect_timeout=5.0,
            backoff=Backoff(initial=0.05, maximum=0.3),
            auth_backoff=Backoff(initial=0.2, maximum=0.5),
        )
        hello = Hello(host, "test", "boot-1", ())
        self.client = AgentClient(ServerConfig(url, token), self.outbox, hello, timing)
        self.produced = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self.client.run()), asyncio.create_task(self._produce())]

    async def _produce(self) -> None:
        while True:
            self.produced += 1
            now = time.time()
            sample = Sample(
                "probe", {}, {"n": self.produced}, int(now * 1e9), counters=frozenset({"n"})
            )
            self.outbox.add(now, [sample])
            self.client.wake()
            await asyncio.sleep(INTERVAL)

    def stop_producing(self) -> None:
        self._tasks[1].cancel()

    async def drained(self, timeout: float = 15.0) -> None:
        """Every batch produced is acked."""
        async with asyncio.timeout(timeout):
            while len(self.outbox):
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@asynccontextmanager
async def runner(setup: Setup) -> AsyncIterator[RunnerProcess]:
    process = await RunnerProcess("run", "-c", str(setup.config)).start()
    try:
        await process.wait_for(lambda: process.port is not None)
        yield process
    finally:
        await process.kill()


def numbers(output: Path) -> list[int]:
    """The batch numbers in the line protocol file, in file order."""
    found = []
    for line in output.read_text(encoding="utf-8").splitlines():
        if line.startswith("probe,"):
            assert ",host=h1 " in line, line
            found.append(int(line.split(" ")[1].removeprefix("n=").removesuffix("i")))
    return found


def saved_seq(database: Path, host: str) -> int:
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT last_seq FROM hosts WHERE name = ?", (host,)).fetchone()
    return int(row[0])


async def wait_acked(agent: Agent, seq: int, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while agent.outbox.acked < seq:
            await asyncio.sleep(0.02)


async def test_runner_stopped_and_killed_while_the_agent_sends(setup: Setup) -> None:
    token = add_host(setup, "h1")
    agent = Agent(setup.url, "h1", token)
    try:
        async with runner(setup) as first:
            agent.start()
            await wait_acked(agent, 8)
            first.signal(signal.SIGTERM)
            assert await first.wait() == 0, first.stderr
        await asyncio.sleep(1.0)  # down: the agent keeps batches, retries with backoff
        async with runner(setup) as second:
            await wait_acked(agent, agent.produced - 1)
            await asyncio.sleep(0.73)  # anywhere between two flushes
            acked_before_kill = agent.outbox.acked
            second.signal(signal.SIGKILL)
            await second.wait()
        # Whatever the agent saw acked was saved before the ack went out.
        assert saved_seq(setup.database, "h1") >= acked_before_kill
        await asyncio.sleep(1.0)
        async with runner(setup) as third:
            await wait_acked(agent, agent.produced - 1)
            agent.stop_producing()
            await agent.drained()
            status, text = await third.get("/metrics")
            assert status == 200
            assert metric_value(text, "fleet_agent_seq_gaps_total", host="h1") == 0
            assert metric_value(text, "fleet_metrics_agents_seq_gaps_total") == 0
            assert metric_value(text, "fleet_metrics_agents_unacked_batches") == 0
            third.signal(signal.SIGTERM)
            assert await third.wait() == 0, third.stderr
    finally:
        await agent.close()
    produced = agent.produced
    assert produced >= 25
    seen = numbers(setup.output)
    # Nothing lost, in order. A SIGKILL that lands between the file write and the SQLite
    # commit (milliseconds) may write the batches of that one flush again, right after
    # themselves: identical lines, which InfluxDB stores once. Nothing else may repeat.
    first_seen = list(dict.fromkeys(seen))
    assert first_seen == list(range(1, produced + 1))
    repeats = len(seen) - len(first_seen)
    assert repeats <= FLUSH / INTERVAL + 2, (repeats, seen)


async def test_stopping_twice_with_sigterm_is_exactly_once(setup: Setup) -> None:
    token = add_host(setup, "h1")
    agent = Agent(setup.url, "h1", token)
    try:
        for _ in range(2):
            async with runner(setup) as process:
                if not agent._tasks:
                    agent.start()
                await wait_acked(agent, agent.produced + 4)
                process.signal(signal.SIGTERM)
                assert await process.wait() == 0, process.stderr
            await asyncio.sleep(0.7)
        async with runner(setup) as process:
            await wait_acked(agent, agent.produced - 1)
            agent.stop_producing()
            await agent.drained()
            _, text = await process.get("/metrics")
            assert metric_value(text, "fleet_agent_seq_gaps_total", host="h1") == 0
            process.signal(signal.SIGTERM)
            assert await process.wait() == 0
    finally:
        await agent.close()
    assert numbers(setup.output) == list(range(1, agent.produced + 1))


async def test_a_removed_host_is_cut_off_at_once_in_the_running_runner(setup: Setup) -> None:
    keep, gone = add_host(setup, "h1"), add_host(setup, "h2")
    headers = {"Authorization": f"Bearer {gone}"}
    async with runner(setup) as process, aiohttp.ClientSession() as session:
        assert keep != gone
        async with session.ws_connect(setup.url, headers=headers) as ws:
            await ws.send_str(
                '{"type":"hello","v":1,"host":"h2","agent_version":"x","boot_id":"b",'
                '"capabilities":[]}'
            )
            assert "welcome" in (await ws.receive()).data
            removed = hosts(setup, "remove", "h2")
            assert removed.returncode == 0, removed.stderr
            started = time.monotonic()
            message = await asyncio.wait_for(ws.receive(), 5.0)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == CLOSE_NOT_AUTHORISED
            assert time.monotonic() - started < 1.5  # poll_interval is 0.2 s
        # And it cannot come back.
        async with session.ws_connect(setup.url, headers=headers) as ws:
            await ws.send_str(
                '{"type":"hello","v":1,"host":"h2","agent_version":"x","boot_id":"b",'
                '"capabilities":[]}'
            )
            await ws.receive()
            assert ws.close_code == CLOSE_NOT_AUTHORISED
        listed = hosts(setup, "list")
        assert "h1" in listed.stdout and "h2" not in listed.stdout
        _, text = await process.get("/metrics")
        assert metric_value(text, "fleet_metrics_agents_revoked_total") == 1
        assert metric_value(text, "fleet_metrics_agents_auth_failures_total") == 1
