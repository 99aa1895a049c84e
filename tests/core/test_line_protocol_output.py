"""The line protocol output against a fake InfluxDB write API on loopback.

The fake answers the way InfluxDB 1.x does (413 above a body size, 400 "partial write" naming
the lines it could not parse, 5xx or a hang while "down"), so each class of answer is proven
to lead to its fate: written once, split, dropped and dead-lettered, or kept and retried.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.exporters.circuit_breaker import CircuitBreaker
from custom_components.fleet_metrics.core.exporters.http_writer import classify, public_url
from custom_components.fleet_metrics.core.exporters.line_protocol import LineEncoder
from custom_components.fleet_metrics.core.exporters.line_protocol_output import (
    LineProtocolOutput,
    OutputClosed,
)
from custom_components.fleet_metrics.core.rejects import Rejected
from custom_components.fleet_metrics.core.sample import Sample

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeInflux:
    max_body: int = 10_000_000
    bad_marker: str = "BAD"  # lines with it cannot be parsed: 400 partial write
    refuse_marker: str = "REFUSE"  # a chunk with it is refused whole: 422
    fail_next: int = 0  # answer ``fail_status`` to this many requests
    fail_status: int = 500
    hang: float = 0.0  # seconds to wait before answering
    written: list[str] = field(default_factory=list)
    bodies: list[int] = field(default_factory=list)  # lines per request
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/write?db=test&u=admin&p=secret"))

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        lines = body.decode().splitlines()
        self.bodies.append(len(lines))
        if self.hang:
            await asyncio.sleep(self.hang)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.json_response({"error": "engine down"}, status=self.fail_status)
        if len(body) > self.max_body:
            return web.json_response({"error": "Request Entity Too Large"}, status=413)
        if any(self.refuse_marker in line for line in lines):
            return web.json_response({"error": "refused"}, status=422)
        bad = [line for line in lines if self.bad_marker in line]
        good = [line for line in lines if self.bad_marker not in line]
        self.written += good
        if bad:
            errors = "\n".join(f"unable to parse '{line}': invalid boolean" for line in bad)
            prefix = "partial write: " if good else ""
            suffix = " dropped=0" if good else ""
            return web.json_response({"error": f"{prefix}{errors}{suffix}"}, status=400)
        return web.Response(status=204)


@pytest.fixture
async def influx() -> AsyncGenerator[FakeInflux]:
    fake = FakeInflux()
    app = web.Application(client_max_size=100_000_000)
    app.router.add_post("/write", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    yield fake
    await fake.server.close()


def sample(index: int, text: str = "ok") -> Sample:
    return Sample("m", {"kind": text}, {"v": float(index)}, index)


def values(lines: list[str]) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in lines]


def output_for(fake: FakeInflux, **kwargs: object) -> tuple[LineProtocolOutput, list[Rejected]]:
    rejected: list[Rejected] = []
    kwargs.setdefault("backoff", Backoff(initial=0.0, maximum=0.0))
    out = LineProtocolOutput(fake.url, on_rejected=rejected.append, **kwargs)  # type: ignore[arg-type]
    return out, rejected


async def test_lines_go_in_chunks_of_lines_and_bytes(influx: FakeInflux) -> None:
    out, _ = output_for(influx, batch_lines=5)
    for index in range(12):
        out.add(sample(index))
    assert await out.flush() == 12
    assert influx.bodies == [5, 5, 2]
    assert values(influx.written) == list(range(12))

    influx.bodies.clear()
    out.batch_bytes = 45  # each line is 20 characters with its newline: two fit
    for index in range(12, 19):
        out.add(sample(index))
    assert await out.flush() == 7
    assert influx.bodies == [2, 2, 2, 1]
    assert values(influx.written) == list(range(19))
    await out.close()


async def test_413_splits_in_halves_and_one_line_still_too_large_is_dead_lettered(
    influx: FakeInflux,
) -> None:
    influx.max_body = 100  # four lines of ~24 bytes
    out, rejected = output_for(influx)
    for index in range(20):
        out.add(sample(index, "x" * 200 if index == 13 else "ok"))
    await out.flush()
    assert values(influx.written) == [i for i in range(20) if i != 13]
    assert out.lines_written == 19 and out.lines_rejected == 1 and out.splits > 0
    assert [r.kind for r in rejected] == ["http_413"]
    assert rejected[0].payload.decode().startswith("m,kind=" + "x" * 200)
    assert out.pending == 0 and out.breaker_state == "closed"
    await out.close()


async def test_a_partial_write_drops_only_the_named_lines_and_never_resends(
    influx: FakeInflux,
) -> None:
    out, rejected = output_for(influx)
    for index in range(10):
        out.add(sample(index, "BAD" if index in (2, 7) else "ok"))
    assert await out.flush() == 8
    assert influx.bodies == [10], "one request: the good lines were already written"
    assert values(influx.written) == [0, 1, 3, 4, 5, 6, 8, 9]
    assert out.lines_rejected == 2
    assert [(r.source, r.kind) for r in rejected] == [("line_protocol", "http_400")] * 2
    assert [values([r.payload.decode()])[0] for r in rejected] == [2, 7]
    assert "unable to parse" in rejected[0].reason
    assert rejected[0].topic == public_url(influx.url)
    assert "secret" not in rejected[0].topic and "admin" not in rejected[0].topic
    await out.close()


@pytest.mark.parametrize("marker", ["REFUSE", "BAD"])
async def test_a_refused_chunk_is_dropped_and_nothing_behind_it_waits(
    influx: FakeInflux, marker: str
) -> None:
    out, rejected = output_for(influx, batch_lines=3)
    out.add(sample(0))
    out.add(sample(1, marker))
    out.add(sample(2))
    for index in range(3, 9):
        out.add(sample(index))
    written = await out.flush()
    if marker == "REFUSE":  # a plain 4xx: the whole chunk goes
        assert written == 6 and out.lines_rejected == 3
        assert [values([r.payload.decode()])[0] for r in rejected] == [0, 1, 2]
        assert {r.kind for r in rejected} == {"http_422"}
    else:  # every line bad: 400 without "partial write", still only that line
        assert written == 8 and out.lines_rejected == 1
    assert values(influx.written)[-6:] == [3, 4, 5, 6, 7, 8]
    assert out.pending == 0 and out.write_errors == 0
    await out.close()


@pytest.mark.parametrize("status", [500, 503, 429, 404])
async def test_endpoint_failures_keep_the_chunk_and_retry_in_order(
    influx: FakeInflux, status: int
) -> None:
    influx.fail_next, influx.fail_status = 2, status
    out, rejected = output_for(influx, batch_lines=4)
    for index in range(6):
        out.add(sample(index))
    assert await out.flush() == 0
    out.add(sample(6))
    assert await out.flush() == 0
    assert out.pending == 7 and out.retries == 2 and out.write_errors == 2
    out.add(sample(7))
    assert await out.flush() == 8
    assert values(influx.written) == list(range(8))
    assert rejected == [] and out.lines_rejected == 0
    await out.close()


async def test_a_timeout_is_retried_and_backoff_spaces_the_attempts(influx: FakeInflux) -> None:
    influx.hang = 1.0
    out, _ = output_for(influx, timeout=0.2, backoff=Backoff(initial=30.0, maximum=60.0))
    out.add(sample(0))
    assert await out.flush() == 0
    assert out.pending == 1 and out.retries == 1
    influx.hang = 0.0
    assert await out.flush() == 0, "within the backoff delay nothing is tried"
    assert len(influx.bodies) == 1
    await out.close(flush_seconds=2.0)  # shutdown tries once more regardless
    assert values(influx.written) == [0]


async def test_connection_refused_keeps_the_lines() -> None:
    out = LineProtocolOutput("http://127.0.0.1:9/write?db=x", timeout=1.0)
    out.add(sample(0))
    assert await out.flush() == 0
    assert out.pending == 1 and out.write_errors == 1
    await out.close(flush_seconds=0.5)


async def test_the_breaker_opens_probes_half_open_and_closes(influx: FakeInflux) -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=10.0, clock=lambda: now[0])
    influx.fail_next = 4
    out, _ = output_for(influx, breaker=breaker)
    out.add(sample(0))
    for _ in range(3):
        await out.flush()
    states = [out.breaker_state]
    assert len(influx.bodies) == 3
    await out.flush()
    assert len(influx.bodies) == 3, "an open breaker sends nothing"
    now[0] = 10.0
    assert breaker.state == "half_open"
    await out.flush()  # the probe fails: open again, for twice as long
    assert len(influx.bodies) == 4
    states.append(out.breaker_state)
    now[0] = 29.0
    states.append(out.breaker_state)
    now[0] = 30.0
    out.add(sample(1))
    assert await out.flush() == 2
    states.append(out.breaker_state)
    assert states == ["open", "open", "open", "closed"]
    assert breaker.cooldown == 10.0 and breaker.opened == 2
    assert values(influx.written) == [0, 1]
    await out.close()


async def test_the_buffer_is_bounded_and_keeps_the_newest(influx: FakeInflux) -> None:
    out, _ = output_for(influx, max_buffer=10)
    for index in range(25):
        out.add(sample(index))
    assert out.pending == 10 and out.dropped == 15
    influx.fail_next = 1
    await out.flush()  # the chunk comes back in front; more arrive meanwhile
    for index in range(25, 30):
        out.add(sample(index))
    assert out.pending == 10 and out.dropped == 20
    await out.flush()
    assert values(influx.written) == list(range(20, 30))
    await out.close()


async def test_lines_a_source_encoded_share_the_bound_and_the_order(influx: FakeInflux) -> None:
    out, _ = output_for(influx, max_buffer=10)
    encoder = LineEncoder()
    for index in range(0, 25, 5):  # samples and ready lines, interleaved, in arrival order
        out.add(sample(index))
        out.add_lines(
            [line for i in range(index + 1, index + 5) if (line := encoder.encode(sample(i)))]
        )
    assert out.pending == 10 and out.dropped == 15
    await out.flush()
    assert values(influx.written) == list(range(15, 25))
    await out.close()


async def test_close_on_a_hanging_endpoint_keeps_its_deadline_and_closes_the_session(
    influx: FakeInflux,
) -> None:
    influx.hang = 30.0
    out, _ = output_for(influx)
    out.add(sample(0))
    started = time.monotonic()
    await out.close(flush_seconds=0.5)
    assert time.monotonic() - started < 2.0
    assert out.pending == 1
    assert out._http is not None and out._http._session is None


def test_classify_reads_influxdb_2_line_numbers_and_1x_quotes() -> None:
    lines = ["a v=1 1", "b v=x 2", "c v=1 3"]
    v2 = orjson.dumps(
        {"code": "invalid", "message": "partial write has occurred: line 2: bad; line 9: x"}
    )
    answer = classify(400, v2, lines)
    assert answer.verdict == "partial" and answer.bad_lines == {1}
    v1 = orjson.dumps({"error": "partial write: field type conflict: input field ... dropped=2"})
    answer = classify(400, v1, lines)
    assert answer.bad_lines == set() and answer.unnamed_dropped == 2
    assert classify(401, b"", lines).verdict == "retry"
    assert classify(400, b"nonsense", lines).verdict == "rejected"


def test_public_url_keeps_no_credentials() -> None:
    assert (
        public_url("https://user:pw@influx.example:8086/write?db=x&u=a&p=b&token=t&rp=r")
        == "https://influx.example:8086/write?db=x&rp=r"
    )


async def test_stdout_whose_reader_is_gone_raises_output_closed_once() -> None:
    class GoneReader:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:  # pragma: no cover - write fails first
            pass

        def fileno(self) -> int:
            raise OSError("no fd")

    out = LineProtocolOutput(stream=GoneReader())  # type: ignore[arg-type]
    out.add(sample(0))
    with pytest.raises(OutputClosed, match="closed by its reader"):
        await out.flush()
    out.add(sample(1))
    assert await out.flush() == 0


PIPE_PROGRAM = textwrap.dedent(
    """
    import asyncio, sys
    from fleet_metrics.core.exporters.line_protocol_output import (
        LineProtocolOutput, OutputClosed)
    from fleet_metrics.core.sample import Sample

    async def main() -> int:
        out = LineProtocolOutput()
        for index in range(10_000_000):
            out.add(Sample("m", {}, {"v": float(index)}, index))
            if index % 1000 == 999:
                try:
                    await out.flush()
                except OutputClosed as err:
                    print(f"stopping: {err}", file=sys.stderr)
                    return 3
        return 0

    sys.exit(asyncio.run(main()))
    """
)


def test_a_real_closed_stdout_pipe_ends_with_one_clear_message() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", PIPE_PROGRAM],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"m v=0.0 0")
    process.stdout.close()  # like `| head -1`
    returncode = process.wait(timeout=30)
    stderr = process.stderr.read().decode()
    assert returncode == 3, stderr
    assert stderr.strip() == (
        "stopping: stdout was closed by its reader; nothing more can be written"
    )
