"""The runner process writes line protocol to InfluxDB's write APIs.

1.x (``/write?db=``) is a real influxd 1.6 (tests/influxd.py), without and with
``auth-enabled``; what the runner wrote is read back with InfluxQL. The demo source counts
its readings (``ticks``), so the points read back must be exactly ticks 1..N: nothing lost
(a 401 keeps the lines for a retry), nothing written twice.

2.x (``/api/v2/write?org=&bucket=``) has no server in this machine's packages; an aiohttp
server on loopback answers as InfluxDB 2.x documents it (204, 401 ``unauthorized access``
for a wrong token, 404 for an unknown bucket), and records what it was sent.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from custom_components.fleet_metrics.core.exporters.line_protocol_output import (
    LineProtocolOutput,
)
from custom_components.fleet_metrics.core.sample import Sample
from tests.core.lp_reference_parser import Line, parse_line
from tests.core.test_influxd import Point, read_back
from tests.influxd import Influxd
from tests.standalone.runner_process import RunnerProcess

STOPPED = re.compile(r"stopped; (\d+) line protocol lines written")


def runner_config(path: Path, output: str, extra: str = "") -> Path:
    output_line = f'output = "{output}"'
    path.write_text(
        f"""
shutdown_timeout = 5

[prometheus]
listen = "127.0.0.1:0"

[line_protocol]
{output_line}
flush_interval = 0.2
{extra}

[[sources]]
kind = "demo"
name = "demo"
interval = 0.1
""",
        encoding="utf-8",
    )
    return path


async def points_in(server: Influxd, database: str) -> dict[int, Point]:
    return await asyncio.to_thread(read_back, server, database)


async def wait_for_points(server: Influxd, database: str, count: int, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while len(await points_in(server, database)) < count:
            await asyncio.sleep(0.2)


async def stop(runner: RunnerProcess) -> int:
    """SIGTERM; the number of lines the runner says it wrote."""
    runner.signal(signal.SIGTERM)
    assert await runner.wait(timeout=15) == 0, runner.stderr
    match = STOPPED.search(runner.stderr)
    assert match, runner.stderr
    return int(match.group(1))


def assert_every_tick_once(points: dict[int, Point], written: int) -> None:
    ticks = sorted(int(str(fields["ticks"])) for _, _, fields in points.values())
    assert ticks == list(range(1, written + 1)), sorted(points.items())
    for measurement, tags, fields in points.values():
        assert measurement == "demo"
        assert tags == {"source": "demo"}
        # InfluxDB's JSON writes a whole float without a point (21.0 as 21): the field's type
        # is checked by `assert_float_field`, the value only as a number here.
        assert isinstance(fields["temperature_celsius"], int | float)


def assert_float_field(server: Influxd, database: str, field: str = "temperature_celsius") -> None:
    answer = server.query('SHOW FIELD KEYS FROM "demo"', database)
    types = dict(answer["results"][0]["series"][0]["values"])
    assert types[field] == "float", types


async def test_runner_writes_to_influxdb_1x_and_every_point_reads_back(
    tmp_path: Path, influxd: Influxd, processes: list[RunnerProcess]
) -> None:
    database = influxd.fresh_database()
    config = runner_config(tmp_path / "config.toml", influxd.write_url(database))
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await wait_for_points(influxd, database, 5)
    written = await stop(runner)
    assert_every_tick_once(await points_in(influxd, database), written)
    assert_float_field(influxd, database)
    assert "WARNING" not in runner.stderr


@pytest.mark.parametrize(
    "form",
    [
        "user_in_url",
        "u_and_p_parameters",
        "username_and_password_keys",
    ],
)
async def test_runner_authenticates_to_influxdb_1x_and_keeps_lines_until_the_user_exists(
    tmp_path: Path, influxd_auth: Influxd, processes: list[RunnerProcess], form: str
) -> None:
    database = influxd_auth.fresh_database()
    user, password = f"writer_{database}", "s3cret-Pa55"
    base = influxd_auth.write_url(database)
    output, extra = {
        "user_in_url": (base.replace("http://", f"http://{user}:{password}@"), ""),
        "u_and_p_parameters": (f"{base}&u={user}&p={password}", ""),
        "username_and_password_keys": (base, f'username = "{user}"\npassword = "{password}"'),
    }[form]
    config = runner_config(tmp_path / "config.toml", output, extra)
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    # The user does not exist yet: influxd answers 401, the runner keeps the lines.
    await runner.wait_for(lambda: "HTTP 401" in runner.stderr, timeout=10)
    await asyncio.to_thread(influxd_auth.add_writer, database, user, password)
    await wait_for_points(influxd_auth, database, 5, timeout=30)
    written = await stop(runner)
    assert_every_tick_once(await points_in(influxd_auth, database), written)
    assert_float_field(influxd_auth, database)
    assert password not in runner.stderr  # logs name the URL without its secrets


async def test_line_protocol_output_sends_basic_auth_to_influxdb_1x(influxd_auth: Influxd) -> None:
    database = influxd_auth.fresh_database()
    await asyncio.to_thread(influxd_auth.add_writer, database, "basic", "b-pass")
    output = LineProtocolOutput(
        influxd_auth.write_url(database), username="basic", password="b-pass"
    )
    for tick in range(1, 4):
        output.add(
            Sample(
                "demo",
                {"source": "demo"},
                {"temperature_celsius": 20.5, "ticks": tick},
                time_ns=1_700_000_000_000_000_000 + tick,
                counters=frozenset({"ticks"}),
            )
        )
    assert await output.flush() == 3
    await output.close()
    assert_every_tick_once(await points_in(influxd_auth, database), 3)

    wrong = LineProtocolOutput(influxd_auth.write_url(database), username="basic", password="x")
    wrong.add(Sample("demo", {"source": "demo"}, {"ticks": 9}, time_ns=1))
    assert await wrong.flush() == 0
    assert wrong.pending == 1 and wrong.lines_rejected == 0  # kept for a retry
    await wrong.close(flush_seconds=0.5)


async def test_a_flush_cancelled_mid_request_keeps_its_lines_for_the_closing_flush() -> None:
    """The runner cancels its periodic flush at SIGTERM; a chunk then in flight was lost
    (found by the tests above: InfluxDB had points the runner never counted)."""
    bodies: list[str] = []
    first_arrived = asyncio.Event()
    release = asyncio.Event()

    async def write(request: web.Request) -> web.Response:
        bodies.append(await request.text())
        if len(bodies) == 1:
            first_arrived.set()
            await release.wait()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/write", write)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        output = LineProtocolOutput(f"http://127.0.0.1:{server.port}/write?db=x")
        for tick in range(1, 4):
            output.add(Sample("demo", {"source": "demo"}, {"ticks": tick}, time_ns=tick))
        flushing = asyncio.create_task(output.flush())
        await first_arrived.wait()
        flushing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await flushing
        assert (output.pending, output.lines_written) == (3, 0)
        release.set()
        await output.close(flush_seconds=5)
        assert (output.pending, output.lines_written) == (0, 3)
        assert len(bodies) == 2 and bodies[1] == bodies[0]
    finally:
        release.set()
        await server.close()


@dataclass
class InfluxV2:
    """``POST /api/v2/write`` as InfluxDB 2.x answers it, for one org, bucket and token."""

    org: str = "fleet"
    bucket: str = "metrics"
    token: str = "tok-right"
    lines: list[Line] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    port: int = 0

    async def write(self, request: web.Request) -> web.Response:
        status, body = await self._answer(request)
        self.answers.append(status)
        if status == 204:
            return web.Response(status=204)
        return web.json_response(body, status=status)

    async def _answer(self, request: web.Request) -> tuple[int, dict[str, str]]:
        if request.headers.get("Authorization") != f"Token {self.token}":
            return 401, {"code": "unauthorized", "message": "unauthorized access"}
        if request.query.get("org") != self.org:
            return 404, {
                "code": "not found",
                "message": f'organization name "{request.query.get("org")}" not found',
            }
        if request.query.get("bucket") != self.bucket:
            return 404, {
                "code": "not found",
                "message": f'bucket "{request.query.get("bucket")}" not found',
            }
        if request.query.get("precision", "ns") != "ns":
            return 400, {"code": "invalid", "message": "precision must be ns"}
        text = await request.text()
        self.lines += [parse_line(line) for line in text.splitlines() if line]
        return 204, {}


@pytest.fixture
async def influx_v2() -> AsyncIterator[InfluxV2]:
    api = InfluxV2()
    app = web.Application()
    app.router.add_post("/api/v2/write", api.write)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api.port = server.port or 0
    yield api
    await server.close()


async def test_runner_writes_to_the_v2_api_with_its_token_and_catches_up_after_a_401(
    tmp_path: Path, influx_v2: InfluxV2, processes: list[RunnerProcess]
) -> None:
    url = f"http://127.0.0.1:{influx_v2.port}/api/v2/write?org=fleet&bucket=metrics"
    config = runner_config(tmp_path / "config.toml", url, 'token = "tok-right"')
    influx_v2.token = "tok-not-yet"  # the token is created in InfluxDB after the runner starts
    runner = await RunnerProcess("run", "-c", str(config)).start()
    processes.append(runner)
    await runner.wait_for(lambda: 401 in influx_v2.answers, timeout=10)
    influx_v2.token = "tok-right"
    await runner.wait_for(lambda: len(influx_v2.lines) >= 5, timeout=30)
    written = await stop(runner)
    # A point per series and time, as InfluxDB keeps them: a chunk in flight when SIGTERM
    # cancels the periodic flush is sent again by the closing one (by design, see
    # LineProtocolOutput._flush_http), and this fake keeps both copies.
    points = {(line.measurement, *sorted(line.tags.items()), line.timestamp): line
              for line in influx_v2.lines}  # fmt: skip
    ticks = sorted(int(str(line.fields["ticks"])) for line in points.values())
    assert ticks == list(range(1, written + 1))
    assert {line.measurement for line in influx_v2.lines} == {"demo"}
    assert "tok-right" not in runner.stderr


@pytest.mark.parametrize(
    ("output", "extra", "message"),
    [
        ("http://h:8086/api/v2/write?org=o", 'token = "t"', "needs ?bucket=NAME"),
        ("stdout", 'token = "t"', "token is only used with an http(s) write URL"),
        ("http://h:8086/write?db=x", 'token = "t"\nusername = "u"', "exclude each other"),
        ("http://a:b@h:8086/write?db=x", 'username = "u"', "username is given twice"),
        ("http://h:8086/write?db=x", 'password = "p"', "password needs a username"),
    ],
)
async def test_credentials_that_cannot_work_stop_the_runner_before_it_starts(
    tmp_path: Path, output: str, extra: str, message: str
) -> None:
    config = runner_config(tmp_path / "config.toml", output, extra)
    runner = await RunnerProcess("check-config", "-c", str(config)).start()
    try:
        assert await runner.wait() == 2
    finally:
        await runner.kill()
    assert "config error: line_protocol: " in runner.stderr
    assert message in runner.stderr
