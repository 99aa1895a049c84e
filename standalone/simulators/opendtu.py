"""An OpenDTU with two Hoymiles inverters on a sped-up solar day, over HTTP and WebSocket.

It serves what the core's OpenDTU client reads, in the shapes of firmware v24.2 and later
(v26.3.30 captures): ``/api/system/status``, ``/api/network/status``,
``/api/livedata/status`` (a summary per inverter; ``?inv=<serial>`` for one inverter's
``AC``/``DC``/``INV`` channels) and the ``/livedata`` WebSocket, which pushes an inverter's
detail whenever it has new readings. Power follows the sun of a ``SimClock``; the HMS-2000 is
unreachable at night (no DC power, no radio), as real inverters are, while the HM-800 keeps
answering with 0 W.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from .clock import SimClock, is_night, sun
from .tasks import cancel_and_wait

FIRMWARE = "v26.3.30"


def _value(value: float, unit: str, digits: int) -> dict[str, Any]:
    return {"v": round(value, digits), "u": unit, "d": digits}


@dataclass
class Inverter:
    serial: str
    name: str
    order: int
    peak_per_string: float  # W at noon under a clear sky
    strings: int
    limit_absolute: int
    sleeps_at_night: bool
    yield_total_kwh: float = 0.0
    yield_day_wh: list[float] = field(default_factory=list)
    string_total_kwh: list[float] = field(default_factory=list)
    string_power: list[float] = field(default_factory=list)
    reachable: bool = True
    temperature: float = 20.0
    last_update: float = 0.0  # monotonic seconds of the last reading from the inverter
    day: int = 0
    tx_request: int = 0
    rx_success: int = 0
    rx_fail_nothing: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.yield_day_wh = [0.0] * self.strings
        self.string_power = [0.0] * self.strings
        if not self.string_total_kwh:
            self.string_total_kwh = [self.yield_total_kwh / self.strings] * self.strings

    def advance(self, sim_seconds: float, hour: float, day: int, now: float) -> bool:
        """Move on by ``sim_seconds`` of the simulated day; False while unreachable."""
        if day != self.day:
            self.day, self.yield_day_wh = day, [0.0] * self.strings
        self.tx_request += 1
        self.reachable = not (self.sleeps_at_night and is_night(hour))
        if not self.reachable:
            self.rx_fail_nothing += 1
            self.string_power = [0.0] * self.strings
            return False
        self.rx_success += 1
        light = sun(hour)
        for index in range(self.strings):
            clouds = 0.85 + 0.15 * self.rng.random()
            power = self.peak_per_string * light * clouds
            self.string_power[index] = power
            self.yield_day_wh[index] += power * sim_seconds / 3600
            self.string_total_kwh[index] += power * sim_seconds / 3_600_000
        self.temperature = 15.0 + 25.0 * light + self.rng.uniform(-0.3, 0.3)
        self.last_update = now
        return True

    @property
    def power_dc(self) -> float:
        return sum(self.string_power)

    @property
    def efficiency(self) -> float:
        return 95.2 if self.power_dc > 0 else 0.0

    @property
    def power_ac(self) -> float:
        return min(self.power_dc * self.efficiency / 100, float(self.limit_absolute))

    def summary(self, now: float) -> dict[str, Any]:
        age = max(0.0, now - self.last_update)
        return {
            "serial": self.serial,
            "name": self.name,
            "order": self.order,
            "data_age": int(age),
            "data_age_ms": int(age * 1000),
            "poll_enabled": self.reachable or not self.sleeps_at_night,
            "reachable": self.reachable,
            "producing": self.reachable and self.power_ac > 0,
            "limit_relative": 100,
            "limit_absolute": self.limit_absolute,
            "radio_stats": {
                "tx_request": self.tx_request,
                "tx_re_request": self.tx_request // 20,
                "rx_success": self.rx_success,
                "rx_fail_nothing": self.rx_fail_nothing,
                "rx_fail_partial": self.tx_request // 300,
                "rx_fail_corrupt": 0,
                "rssi": -62 if self.reachable else -80,
            },
        }

    def detail(self, now: float) -> dict[str, Any]:
        body = self.summary(now)
        voltage = 233.0 + self.rng.uniform(-1.5, 1.5)
        ac = self.power_ac
        body["AC"] = {
            "0": {
                "Power": _value(ac, "W", 1),
                "Voltage": _value(voltage, "V", 1),
                "Current": _value(ac / voltage, "A", 2),
                "Frequency": _value(50.0 + self.rng.uniform(-0.03, 0.03), "Hz", 2),
                "PowerFactor": _value(1.0 if ac else 0.0, "", 3),
                "ReactivePower": _value(0.1 if ac else 21.2, "var", 1),
            }
        }
        dc: dict[str, Any] = {}
        for index in range(self.strings):
            power = self.string_power[index]
            string_voltage = 38.0 + 4.0 * min(1.0, power / 50) if power else 13.5
            dc[str(index)] = {
                "name": {"u": ""},
                "Power": _value(power, "W", 1),
                "Voltage": _value(string_voltage, "V", 1),
                "Current": _value(power / string_voltage, "A", 2),
                "YieldDay": _value(self.yield_day_wh[index], "Wh", 0),
                "YieldTotal": _value(self.string_total_kwh[index], "kWh", 3),
                "Irradiation": {
                    **_value(power / 410 * 100, "%", 3),
                    "max": 410,
                },
            }
        body["DC"] = dc
        body["INV"] = {
            "0": {
                "Power DC": _value(self.power_dc, "W", 1),
                "YieldDay": _value(sum(self.yield_day_wh), "Wh", 0),
                "YieldTotal": _value(sum(self.string_total_kwh), "kWh", 3),
                "Temperature": _value(self.temperature, "°C", 1),
                "Efficiency": _value(self.efficiency, "%", 3),
            }
        }
        body["events"] = 1
        return body


def default_inverters(seed: int = 11) -> list[Inverter]:
    rng = random.Random(seed)
    return [
        Inverter("114182345678", "Garage HM-800", 0, 380.0, 2, 800, False,
                 yield_total_kwh=1234.5, rng=rng),
        Inverter("116491234567", "Roof HMS-2000", 1, 470.0, 4, 2000, True,
                 yield_total_kwh=3209.963, rng=rng),
    ]  # fmt: skip


HINTS = {
    "time_sync": False,
    "radio_problem": False,
    "default_password": False,
    "pin_mapping_issue": False,
}


class OpenDtuSimulator:
    """The DTU as an aiohttp server; ``interval`` is how often the inverters are polled
    (OpenDTU's poll interval), each poll pushing a ``/livedata`` message."""

    def __init__(
        self,
        clock: SimClock | None = None,
        inverters: list[Inverter] | None = None,
        interval: float = 2.0,
        hostname: str = "OpenDTU-Demo",
    ) -> None:
        self.clock = clock or SimClock()
        self.inverters = inverters if inverters is not None else default_inverters()
        self.interval = interval
        self.hostname = hostname
        self.requests = 0
        self.pushes = 0
        self.url = ""
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None
        self._started = 0.0
        self._last_sim = 0.0

    # --- state --------------------------------------------------------------------------------

    def poll(self, now: float) -> list[Inverter]:
        """One radio round: every inverter advances; returns those that answered."""
        sim = self.clock.seconds()
        elapsed, self._last_sim = max(0.0, sim - self._last_sim), sim
        hour, day = self.clock.hour(), self.clock.day()
        return [inv for inv in self.inverters if inv.advance(elapsed, hour, day, now)]

    def total(self) -> dict[str, Any]:
        return {
            "Power": _value(sum(i.power_ac for i in self.inverters if i.reachable), "W", 1),
            "YieldDay": _value(sum(sum(i.yield_day_wh) for i in self.inverters), "Wh", 0),
            "YieldTotal": _value(sum(sum(i.string_total_kwh) for i in self.inverters), "kWh", 3),
        }

    def overview(self, now: float) -> dict[str, Any]:
        return {
            "inverters": [inverter.summary(now) for inverter in self.inverters],
            "total": self.total(),
            "hints": HINTS,
        }

    def live(self, inverter: Inverter, now: float) -> dict[str, Any]:
        return {"inverters": [inverter.detail(now)], "total": self.total(), "hints": HINTS}

    def system_status(self, now: float) -> dict[str, Any]:
        return {
            "hostname": self.hostname,
            "sdkversion": "v5.4.2",
            "cpufreq": 240,
            "cputemp": 48.5,
            "heap_total": 314484,
            "heap_used": 138448 + self.requests % 4096,
            "heap_max_block": 155636,
            "heap_min_free": 120500,
            "psram_total": 0,
            "psram_used": 0,
            "sketch_total": 1966080,
            "sketch_used": 1730672,
            "littlefs_total": 196608,
            "littlefs_used": 20480,
            "chiprevision": 0,
            "chipmodel": "ESP32-S3",
            "chipcores": 2,
            "flashsize": 8388608,
            "resetreason_0": "Software reset CPU",
            "resetreason_1": "Software reset CPU",
            "cfgsavecount": 22,
            "config_version": "0.1.30",
            "git_hash": FIRMWARE,
            "git_branch": "master",
            "pioenv": "generic_esp32s3",
            "uptime": int(now - self._started),
            "nrf_configured": True,
            "nrf_connected": True,
            "nrf_pvariant": True,
            "cmt_configured": True,
            "cmt_connected": True,
        }

    def network_status(self) -> dict[str, Any]:
        return {
            "sta_status": True,
            "sta_ssid": "demo-net",
            "sta_bssid": "A0:B5:49:12:34:56",
            "sta_rssi": -61,
            "network_hostname": self.hostname,
            "network_ip": "192.0.2.40",
            "network_netmask": "255.255.255.0",
            "network_gateway": "192.0.2.1",
            "network_dns1": "192.0.2.1",
            "network_dns2": "0.0.0.0",
            "network_mac": "34:85:18:A1:B2:C3",
            "network_mode": "Station",
            "ap_status": False,
            "ap_ssid": "OpenDTU-A1B2C3",
            "ap_ip": "192.168.4.1",
            "ap_mac": "34:85:18:A1:B2:C4",
            "ap_stationnum": 0,
        }

    # --- HTTP ---------------------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    async def _system(self, request: web.Request) -> web.Response:
        self.requests += 1
        return _json(self.system_status(self._now()))

    async def _network(self, request: web.Request) -> web.Response:
        self.requests += 1
        return _json(self.network_status())

    async def _livedata(self, request: web.Request) -> web.Response:
        self.requests += 1
        now = self._now()
        serial = request.query.get("inv")
        if serial is None:
            return _json(self.overview(now))
        inverter = next((i for i in self.inverters if i.serial == serial), None)
        if inverter is None:  # what the firmware answers for a serial it does not know
            return _json({"inverters": [], "total": self.total(), "hints": HINTS})
        return _json(self.live(inverter, now))

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for _ in ws:  # the DTU ignores what clients send
                pass
        finally:
            self._sockets.discard(ws)
        return ws

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            now = self._now()
            for inverter in self.poll(now):
                message = orjson.dumps(self.live(inverter, now)).decode()
                for ws in list(self._sockets):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.send_str(message)
                        self.pushes += 1

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the DTU's base URL."""
        app = web.Application()
        app.router.add_get("/api/system/status", self._system)
        app.router.add_get("/api/network/status", self._network)
        app.router.add_get("/api/livedata/status", self._livedata)
        app.router.add_get("/livedata", self._websocket)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self._started = self._now()
        self._last_sim = self.clock.seconds()
        self.poll(self._started)
        self._poller = asyncio.create_task(self._poll_forever(), name="opendtu-simulator")
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._poller is not None:
            await cancel_and_wait([self._poller])
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")
