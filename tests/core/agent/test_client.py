"""The agent's client against a real WebSocket server on loopback (``agent_fake_server``).

Every test runs the real client (websockets), outbox and an aiohttp server; the server can refuse,
withhold acks, drop connections and restart, which is what the client must survive.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from custom_components.fleet_metrics.core.agent.agent import HostAgent
from custom_components.fleet_metrics.core.agent.client import AgentClient, ClientTiming
from custom_components.fleet_metrics.core.agent.config import ServerConfig, validate
from custom_components.fleet_metrics.core.agent.outbox import Outbox
from custom_components.fleet_metrics.core.agent.protocol import MAX_MESSAGE_BYTES, Hello
from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.sample import Sample

from .agent_fake_server import TOKEN, FakeServer, until

HELLO = Hello("pve1", "0.1.0", "boot-1", ("split_batches",))


def fast_timing(**overrides: object) -> ClientTiming:
    timing = ClientTiming(
        heartbeat=5.0,
        connect_timeout=2.0,
        backoff=Backoff(initial=0.02, maximum=0.1),
        auth_backoff=Backoff(initial=0.02, maximum=0.1),
    )
    for key, value in overrides.items():
        setattr(timing, key, value)
    return timing


def batch(index: int) -> list[Sample]:
    return [Sample("load", {}, {"load1": float(index)}, 1_700_000_000_000_000_000 + index)]


class Harness:
    """One client with its outbox, running against ``url`` until the test ends."""

    def __init__(self, url: str, capacity: int = 100) -> None:
        self.outbox = Outbox(capacity, name=url)
        self.client = AgentClient(
            ServerConfig(url=url, token=TOKEN), self.outbox, HELLO, fast_timing()
        )
        self.task: asyncio.Task[None] | None = None

    def add(self, index: int) -> None:
        self.outbox.add(float(index), batch(index))
        self.client.wake()

    def start(self) -> Harness:
        self.task = asyncio.create_task(self.client.run())
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    fake = await FakeServer().start()
    yield fake
    await fake.stop()


@pytest.fixture
async def harness(server: FakeServer) -> AsyncIterator[Harness]:
    running = Harness(server.url).start()
    yield running
    await running.stop()


def loads(server: FakeServer) -> list[float]:
    return [s.fields["load1"] for b in server.batches for s in b.samples]  # type: ignore[misc]


async def test_batches_are_acked_and_freed(harness: Harness, server: FakeServer) -> None:
    for index in range(5):
        harness.add(index)
    await until(lambda: len(harness.outbox) == 0 and server.seqs() == [1, 2, 3, 4, 5])
    assert loads(server) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert harness.outbox.acked == 5
    assert server.hellos == [HELLO]
    assert server.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert server.query_strings == [""]
    assert server.duplicates == server.gaps == 0
    assert harness.client.connected


async def test_unacked_batches_are_replayed_in_order_after_a_drop(
    harness: Harness, server: FakeServer
) -> None:
    server.apply = False  # takes batches and loses them, as a crash before the commit does
    for index in range(5):
        harness.add(index)
    await until(lambda: len(server.received) == 5)
    assert len(harness.outbox) == 5  # nothing acked, nothing freed
    server.drop()
    await until(lambda: not harness.client.connected)
    for index in range(5, 8):
        harness.add(index)  # while disconnected
    server.apply = True
    await until(lambda: server.seqs() == list(range(1, 9)))
    assert loads(server) == [float(i) for i in range(8)]
    assert server.duplicates == server.gaps == 0
    await until(lambda: len(harness.outbox) == 0)


async def test_resume_from_is_respected_so_nothing_arrives_twice(
    harness: Harness, server: FakeServer
) -> None:
    server.ack = False  # applies, but the acks are lost
    for index in range(6):
        harness.add(index)
    await until(lambda: server.seqs() == list(range(1, 7)))
    assert len(harness.outbox) == 6
    server.drop()
    await until(lambda: server.connections == 2 and harness.client.connected)
    server.ack = True
    harness.add(6)
    await until(lambda: server.seqs() == list(range(1, 8)))
    assert server.received == [1, 2, 3, 4, 5, 6, 7]  # welcome said 6: only 7 was sent again
    assert server.duplicates == 0
    await until(lambda: len(harness.outbox) == 0)


async def test_a_server_restart_loses_nothing(harness: Harness, server: FakeServer) -> None:
    for index in range(3):
        harness.add(index)
    await until(lambda: len(server.batches) == 3)
    await server.stop()
    for index in range(3, 10):
        harness.add(index)
    await asyncio.sleep(0.2)
    await server.start()  # same port, same applied state (the hub keeps it in SQLite)
    await until(lambda: server.seqs() == list(range(1, 11)))
    assert loads(server) == [float(i) for i in range(10)]
    assert server.duplicates == server.gaps == 0


async def test_the_buffer_cap_drops_the_oldest_and_counts() -> None:
    server = FakeServer()
    await server.start()
    port = server.port
    await server.stop()  # nobody listens while the agent collects
    running = Harness(f"ws://127.0.0.1:{port}/api/agent", capacity=5).start()
    try:
        for index in range(12):
            running.add(index)
        await asyncio.sleep(0.1)
        assert running.outbox.dropped == 7
        server.port = port
        await server.start()
        await until(lambda: server.seqs() == [8, 9, 10, 11, 12])
        assert loads(server) == [7.0, 8.0, 9.0, 10.0, 11.0]
        assert server.gaps == 7  # the server sees what the agent had to drop
    finally:
        await running.stop()
        await server.stop()


async def test_the_window_bounds_batches_in_flight(server: FakeServer) -> None:
    server.ack = False
    running = Harness(server.url)
    running.client.timing.window = 3
    running.start()
    try:
        for index in range(10):
            running.add(index)
        await until(lambda: len(server.received) == 3)
        await asyncio.sleep(0.2)
        assert server.received == [1, 2, 3]
        server.ack = True
        server.drop()  # the acks were lost; the next connection resumes after seq 3
        await until(lambda: server.seqs() == list(range(1, 11)))
        assert server.duplicates == 0
    finally:
        await running.stop()


async def test_reconnects_back_off_with_growing_delays() -> None:
    attempts: list[float] = []

    async def unavailable(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(unavailable, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    running = Harness(f"ws://127.0.0.1:{port}/api/agent")
    running.client.timing.backoff = Backoff(initial=0.04, maximum=0.64)
    running.start()
    try:
        await until(lambda: len(attempts) >= 6, timeout=10)
    finally:
        await running.stop()
        listener.close()
        await listener.wait_closed()
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    # delays are drawn from [d/2, d] with d = 0.04, 0.08, 0.16, 0.32, 0.64
    assert gaps[0] < 0.16
    assert gaps[3] >= 0.16
    assert gaps[4] >= 0.32
    assert running.client.timing.backoff.attempts >= 5


async def test_a_refused_token_is_logged_once_and_retried_slowly(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.token = "fma_another"
    running = Harness(server.url)
    running.client.timing.auth_backoff = Backoff(initial=0.02, maximum=0.04)
    running.client.timing.backoff = Backoff(initial=30, maximum=30)  # must not be the one used
    caplog.set_level(logging.INFO)  # the reconnect's INFO line, with or without HA's harness
    running.start()
    try:
        with caplog.at_level(logging.DEBUG):
            await until(lambda: running.client.stats.refused >= 4)
        refusals = [r for r in caplog.records if "refused host pve1" in r.getMessage()]
        assert len(refusals) == 1
        assert refusals[0].levelno == logging.ERROR
        assert "check the token" in refusals[0].getMessage()
        assert TOKEN not in caplog.text
        assert running.client.stats.refused >= 4
        running.add(1)
        server.token = TOKEN  # the token was fixed on the server side
        await until(lambda: server.seqs() == [1])
        assert any("connected as host pve1" in r.getMessage() for r in caplog.records)
    finally:
        await running.stop()


async def test_a_replaced_connection_is_logged_and_retried(
    harness: Harness, server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    await until(lambda: harness.client.connected)
    server.close_code = 4002
    server.drop()
    await until(lambda: server.connections >= 2)
    await until(lambda: any("took over" in r.getMessage() for r in caplog.records))
    server.close_code = None
    harness.add(1)
    await until(lambda: server.seqs() == [1])


async def test_another_protocol_version_stops_the_client_for_good(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.close_code = 4010
    running = Harness(server.url).start()
    assert running.task is not None
    await asyncio.wait_for(running.task, timeout=5)  # run() returns
    assert server.connections == 1
    assert running.client.fatal is not None
    assert "protocol version" in running.client.fatal
    assert any(r.levelno == logging.ERROR and "upgrade" in r.getMessage() for r in caplog.records)


async def test_a_batch_over_the_message_cap_arrives_split(
    harness: Harness, server: FakeServer
) -> None:
    samples = [
        Sample("network", {"device": f"tap{i}i0"}, {f"f{n}": i * 1000 + n for n in range(20)}, i)
        for i in range(6000)
    ]
    seqs = harness.outbox.add(1.0, samples)
    harness.client.wake()
    assert len(seqs) > 1
    await until(lambda: len(server.batches) == len(seqs), timeout=20)
    assert max(server.frame_sizes) <= MAX_MESSAGE_BYTES
    assert [s for b in server.batches for s in b.samples] == samples


async def test_two_servers_each_get_everything_with_their_own_seqs(tmp_path: Path) -> None:
    """The whole agent, collectors included: one server up from the start, one that
    refuses at first and comes up later; neither holds the other back."""
    first = await FakeServer().start()
    second = await FakeServer(path="/api/fleet_metrics/agent").start()
    second.close_code = 4001
    config = validate(
        {
            "host": "pve1",
            "servers": [
                {"url": first.url, "token": TOKEN},
                {"url": second.url, "token": TOKEN},
            ],
            "intervals": {"fast": 1, "medium": 1, "slow": 1},
        },
        agent_version="0.1.0",
    )
    agent = HostAgent(config, "0.1.0", timing=fast_timing)
    running = asyncio.create_task(agent.run())
    try:
        await until(lambda: len(first.batches) >= 6, timeout=10)  # two turns of three tiers
        assert second.batches == []
        second.close_code = None
        await until(lambda: len(second.batches) >= len(first.batches) >= 6, timeout=10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await first.stop()
        await second.stop()
    for fake in (first, second):
        assert fake.seqs() == list(range(1, len(fake.batches) + 1))
        assert fake.duplicates == fake.gaps == 0
        assert {h.boot_id for h in fake.hellos} == {agent.boot_id}
        measurements = {s.measurement for b in fake.batches for s in b.samples}
        assert {"cpu", "load", "memory", "filesystem", "host", "collector"} <= measurements
    assert agent.outboxes[0] is not agent.outboxes[1]


async def test_the_whole_agent_against_the_real_hub(caplog: pytest.LogCaptureFixture) -> None:
    """The project's own endpoint and hub on a real aiohttp server: the agent's real collectors
    arrive once each and in order, across connections the hub closes, and a wrong token is
    refused and logged once."""
    from aiohttp import web

    from custom_components.fleet_metrics.core.agent.protocol import Batch
    from custom_components.fleet_metrics.core.sources.agents.endpoint import handle_agent
    from custom_components.fleet_metrics.core.sources.agents.hub import HostState, Hub
    from custom_components.fleet_metrics.core.sources.agents.store import HostRecord
    from custom_components.fleet_metrics.core.sources.agents.tokens import hash_token, make_token

    token = make_token()
    records = {"pve1": HostRecord("pve1", hash_token(token), time.time())}
    emitted: list[Sample] = []
    hub = Hub(emitted.append, reload_hosts=lambda: records)
    hub.set_hosts(records)
    applied: list[int] = []

    def on_batch(state: HostState, batch: Batch) -> None:
        applied.append(batch.seq)

    hub.subscribe(on_batch=on_batch)
    app = web.Application()

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handle_agent(request, hub)

    app.router.add_get("/api/agent", endpoint)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"ws://127.0.0.1:{runner.addresses[0][1]}/api/agent"
    config = validate(
        {
            "host": "pve1",
            "servers": [{"url": url, "token": token}],
            "intervals": {"fast": 1, "medium": 1, "slow": 1},
        }
    )
    agent = HostAgent(config, "0.1.0", timing=fast_timing)
    running = asyncio.create_task(agent.run())
    wrong = Harness(url)
    wrong.client.server = ServerConfig(url=url, token=make_token())
    wrong.client.hello = Hello("pve1", "0.1.0", "boot-x")
    try:
        await until(lambda: len(applied) >= 3, timeout=10)
        connection = hub.hosts["pve1"].connection
        assert connection is not None
        connection.close(1011, "server error")  # the agent reconnects and goes on
        await until(lambda: len(applied) >= 9, timeout=15)
        with caplog.at_level(logging.ERROR):
            wrong.start()
            await until(lambda: wrong.client.stats.refused >= 2, timeout=10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await wrong.stop()
        hub.close_all()
        await runner.cleanup()
    assert applied == list(range(1, len(applied) + 1))
    state = hub.hosts["pve1"]
    assert state.seq_gaps == 0
    assert state.batches_duplicate == 0
    assert emitted  # the hub mapped the agent's samples for its outputs
    assert len([r for r in caplog.records if "refused host pve1" in r.getMessage()]) == 1


async def test_series_are_declared_on_every_connection_and_replays_arrive_once() -> None:
    """A server offering series gets rows; after a drop the client declares again before
    replaying (the server forgot the ids with the connection)."""
    server = await FakeServer(series=True).start()
    running = Harness(server.url).start()
    try:
        running.add(0)  # before the first welcome: in full
        await until(lambda: server.seqs() == [1])
        server.apply = False
        for index in range(1, 4):
            running.add(index)
        await until(lambda: len(server.received) == 4)
        server.drop()
        server.apply = True  # before the client can be back
        await until(lambda: server.connections == 2)
        running.add(4)
        await until(lambda: server.seqs() == [1, 2, 3, 4, 5])
        assert loads(server) == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert server.duplicates == server.gaps == 0
        assert server.frame_kinds[0] == "samples"
        assert server.frame_kinds[1:5] == ["series", "rows", "rows", "rows"]
        assert server.frame_kinds[5:] == ["series", "rows", "rows", "rows", "rows"]
    finally:
        await running.stop()
        await server.stop()


async def test_a_server_that_stops_offering_series_gets_the_kept_batches_in_full() -> None:
    server = await FakeServer(series=True).start()
    running = Harness(server.url).start()
    try:
        running.add(0)
        await until(lambda: server.seqs() == [1])
        running.add(1)
        await until(lambda: server.seqs() == [1, 2])
        await server.stop()
        for index in range(2, 5):
            running.add(index)  # kept as rows: the last welcome offered series
        server.series = False  # an older server on the same port
        await server.start()
        await until(lambda: server.seqs() == [1, 2, 3, 4, 5])
        assert loads(server) == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert server.frame_kinds[:3] == ["samples", "series", "rows"]  # before the restart
        assert server.frame_kinds[-3:] == ["samples"] * 3
    finally:
        await running.stop()
        await server.stop()
