"""``/metrics`` under a scrape burst: does ``/healthz`` stay fast, and what does a burst cost?

Three processes, so that no side's CPU shows up as another's latency: the server (a
PrometheusSink with ``--series`` series that a fake source keeps updating on the loop, plus
one new series every tick), a prober that times ``GET /healthz`` on a keep-alive connection
every 10 ms, and the scrapers (``--scrapers`` concurrent ``GET /metrics`` with
``Accept-Encoding: gzip``, as Prometheus sends, repeated ``--rounds`` times).

Servers compared:
  before        the pre-change app: every scrape renders on its own, no gzip (AppRunner+TCPSite)
  after         create_app + start_server: one render per burst, gzip once per render
  after-sliced  as after, with the render handed over in pieces
                (``PrometheusSink.render_chunks``, as the runner does): the loop runs between

Run: ``.venv/bin/python -m bench.http_scrape`` (``--modes after`` to pick).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

import aiohttp
from aiohttp import web
from fleet_metrics.core.exporters.prometheus import PrometheusSink
from fleet_metrics.core.sample import Sample
from fleet_metrics.http_server import create_app, start_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MODES = ("before", "after", "after-sliced")
FIELDS = 10
SOURCE_TICK = 0.01  # the fake source: every 10 ms ...
UPDATES_PER_TICK = 100  # ... updates this many series and adds one new


def fill(sink: PrometheusSink, series: int) -> None:
    for device in range(series // FIELDS):
        sink.add(sample(device, 0.0))


def sample(device: int, value: float) -> Sample:
    tags = {"device": f"plug-{device:06d}", "site": "home"}
    return Sample("tasmota_energy", tags, {f"f{i}_watts": value + i for i in range(FIELDS)})


async def fake_source(sink: PrometheusSink, devices: int) -> None:
    """Writes the sink on the loop, as sources do, so renders meet a changing sink."""
    tick = 0
    while True:
        await asyncio.sleep(SOURCE_TICK)
        tick += 1
        for i in range(UPDATES_PER_TICK // FIELDS):
            sink.add(sample((tick * 10 + i) % devices, float(tick)))
        sink.add(Sample("bench_new", {"n": str(tick)}, {"value": 1.0}))


def legacy_app(sink: PrometheusSink) -> web.Application:
    """The app as it was before this change: a render per scrape, no gzip."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=sink.render().encode(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


def serve(mode: str, series: int, ports: Connection, stop: Event) -> None:
    async def main() -> None:
        sink = PrometheusSink()
        fill(sink, series)
        source = asyncio.create_task(fake_source(sink, series // FIELDS))
        if mode == "before":
            runner = web.AppRunner(legacy_app(sink), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            ports.send(runner.addresses[0][1])
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
            await runner.cleanup()
            ports.send({})
        else:
            if mode == "after":
                app = create_app(lambda: sink.render().encode())
            else:
                assert b"".join(s.encode() for s in sink.render_chunks()) == sink.render().encode()
                app = create_app(lambda: (piece.encode() for piece in sink.render_chunks()))
            server = await start_server(app, "127.0.0.1", 0)
            ports.send(server.port)
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)
            await server.close()
            ports.send({k: getattr(server.stats, k) for k in server.stats.__slots__})
        source.cancel()

    asyncio.run(main())


def probe(port: int, samples: Connection, stop: Event) -> None:
    """``(start, seconds)`` of each ``GET /healthz``, on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out: list[tuple[float, float]] = []
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    samples.send("ready")
    while not stop.is_set():
        start = time.monotonic()
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        response.read()
        out.append((start, time.monotonic() - start))
        time.sleep(0.01)
    samples.send(out)


async def burst(port: int, scrapers: int, gzip: bool) -> tuple[list[float], int]:
    """Per-scrape seconds and the bytes received, for ``scrapers`` concurrent scrapes."""
    headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(
        connector=connector, auto_decompress=False, timeout=timeout
    ) as session:

        async def one() -> tuple[float, int]:
            start = time.monotonic()
            async with session.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as resp:
                assert resp.status == 200, resp.status
                body = await resp.read()
            return time.monotonic() - start, len(body)

        results = await asyncio.gather(*(one() for _ in range(scrapers)))
    return [seconds for seconds, _ in results], sum(size for _, size in results)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_mode(mode: str, args: argparse.Namespace) -> None:
    ctx = mp.get_context("spawn")
    stop_server, stop_probe = ctx.Event(), ctx.Event()
    server_end, here = ctx.Pipe()
    server = ctx.Process(target=serve, args=(mode, args.series, server_end, stop_server))
    server.start()
    port = here.recv()
    probe_end, probe_here = ctx.Pipe()
    prober = ctx.Process(target=probe, args=(port, probe_end, stop_probe))
    prober.start()
    assert probe_here.recv() == "ready"
    time.sleep(1.0)  # an idle baseline for the prober
    windows: list[tuple[float, float]] = []
    scrape_seconds: list[float] = []
    received = 0
    for _ in range(args.rounds):
        start = time.monotonic()
        seconds, size = asyncio.run(burst(port, args.scrapers, not args.identity))
        windows.append((start, time.monotonic()))
        scrape_seconds += seconds
        received += size
        time.sleep(0.5)
    stop_probe.set()
    samples = probe_here.recv()
    prober.join()
    stop_server.set()
    stats = here.recv()
    server.join()

    def during(start: float, seconds: float) -> bool:
        return any(start <= b and start + seconds >= a for a, b in windows)

    busy = [s for t, s in samples if during(t, s)]
    idle = [s for t, s in samples if not during(t, s)]
    bursts = ", ".join(f"{b - a:.2f}" for a, b in windows)
    print(f"\n== {mode}: {args.series} series, {args.scrapers} concurrent scrapes")
    print(f"  burst wall time (s):          {bursts}")
    print(
        f"  scrape latency (s):           p50 {statistics.median(scrape_seconds):.3f}"
        f"  max {max(scrape_seconds):.3f}"
    )
    print(f"  received per scrape (bytes):  {received // len(scrape_seconds)}")
    if busy:
        p50, p99 = statistics.median(busy) * 1e3, quantile(busy, 0.99) * 1e3
        print(
            f"  /healthz during bursts (ms):  n={len(busy)}  p50 {p50:.1f}"
            f"  p99 {p99:.1f}  max {max(busy) * 1e3:.1f}"
        )
    else:
        print("  /healthz during bursts:       no probe overlapped a burst")
    if idle:
        print(f"  /healthz idle (ms):           p50 {statistics.median(idle) * 1e3:.1f}")
    if stats:
        keys = ("renders", "render_seconds", "gzips", "gzip_seconds", "scrapes", "scrapes_gzip")
        print("  server: " + "  ".join(f"{k}={round(stats[k], 3)}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=30_000)
    parser.add_argument("--scrapers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--identity", action="store_true", help="scrape without gzip")
    args = parser.parse_args()
    for mode in args.modes:
        run_mode(mode, args)


if __name__ == "__main__":
    main()
