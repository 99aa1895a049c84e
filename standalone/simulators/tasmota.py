"""Tasmota devices over MQTT, as Tasmota 13 and 14 publish.

Each device announces itself with retained native discovery (``tasmota/discovery/<MAC>/config``
and ``/sensors``) and a retained ``LWT``, then sends ``tele/<topic>/STATE`` and ``SENSOR``
every ``tele_period``. Payload keys, their order and number formats follow real captures
(``discovery_config_esp32_v15.0.1.4``, the S31 session of 12.1.1): plugs report ``ENERGY``
with a ``Total`` that grows on the simulated clock, a climate sensor reports a ``BME280``.
One device drops off now and then: ``LWT Offline`` (what the broker would publish as its
will), silence, then ``Online`` and its discovery again, as a rebooted device does.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt
import orjson

from .clock import SimClock

DISCOVERY_PREFIX = "tasmota/discovery"
_SO = {"4": 0, "11": 0, "13": 0, "17": 0, "20": 0, "30": 0, "68": 0, "73": 0, "82": 0,
       "114": 0, "117": 0}  # fmt: skip


@dataclass
class TasmotaDevice:
    """One device; ``kind`` is ``plug`` (relay + energy meter) or ``climate`` (BME280)."""

    mac: str
    name: str
    model: str
    firmware: str
    kind: str
    esp32: bool = False
    base_power: float = 0.0
    total_kwh: float = 0.0
    ip: str = "192.0.2.10"
    flaps: bool = False
    # state
    relay_on: bool = True
    today_kwh: float = 0.0
    yesterday_kwh: float = 0.0
    day: int = 0
    boots: int = 0
    online: bool = False
    offline_until: float = 0.0
    next_flap: float = 0.0
    started: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def topic(self) -> str:
        """Tasmota's default topic: ``tasmota_`` and the MAC's last six hex digits."""
        return f"tasmota_{self.mac[-6:]}"

    def slots(self) -> int:
        return 32 if self.esp32 else 8

    def discovery_config(self) -> dict[str, Any]:
        slots = self.slots()
        relays = [1 if self.kind == "plug" else 0] + [0] * (slots - 1)
        config: dict[str, Any] = {
            "ip": self.ip,
            "dn": self.name,
            "fn": [self.name] + [None] * 7,
            "hn": f"{self.topic}-{int(self.mac[-4:], 16) % 10000:04d}",
            "mac": self.mac,
            "md": self.model,
            "ty": 0,
            "if": 0,
        }
        if self.esp32:
            config["cam"] = 0
        config |= {
            "ofln": "Offline",
            "onln": "Online",
            "state": ["OFF", "ON", "TOGGLE", "HOLD"],
            "sw": self.firmware,
            "t": self.topic,
            "ft": "%prefix%/%topic%/",
            "tp": ["cmnd", "stat", "tele"],
            "rl": relays,
            "swc": [-1] * slots,
            "swn": [None] * slots,
            "btn": [0] * slots,
            "so": dict(_SO),
            "lk": 0,
            "lt_st": 0,
            "bat": 0,
            "dslp": 0,
            "sho": [],
            "sht": [],
            "ver": 1,
        }
        return config

    def sensor(self, now: datetime) -> dict[str, Any]:
        """The ``SENSOR`` payload (also what ``/sensors`` wraps in ``sn``)."""
        body: dict[str, Any] = {"Time": _time(now)}
        if self.kind == "plug":
            power = self.power()
            voltage = 229 + self.rng.randint(0, 4)
            apparent = round(power / 0.93) if power else 0
            reactive = round(math.sqrt(max(apparent**2 - power**2, 0)))
            body["ENERGY"] = {
                "TotalStartTime": "2024-03-02T10:11:12",
                "Total": round(self.total_kwh, 3),
                "Yesterday": round(self.yesterday_kwh, 3),
                "Today": round(self.today_kwh, 3),
                "Period": round(power * 0.01),
                "Power": round(power),
                "ApparentPower": apparent,
                "ReactivePower": reactive,
                "Factor": 0.93 if power else 0.0,
                "Voltage": voltage,
                "Current": round(apparent / voltage, 3),
            }
        else:
            hour = now.hour + now.minute / 60
            noise = self.rng.uniform(-0.1, 0.1)
            temperature = 21.0 + 1.5 * math.sin(hour / 24 * 2 * math.pi) + noise
            humidity = 48.0 + 5.0 * math.cos(hour / 24 * 2 * math.pi)
            body["BME280"] = {
                "Temperature": round(temperature, 1),
                "Humidity": round(humidity, 1),
                "DewPoint": round(temperature - (100 - humidity) / 5, 1),
                "Pressure": round(1013.2 + self.rng.uniform(-0.5, 0.5), 1),
            }
            body["PressureUnit"] = "hPa"
            body["TempUnit"] = "C"
        return body

    def state(self, now: datetime, uptime: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Time": _time(now),
            "Uptime": _duration(uptime),
            "UptimeSec": uptime,
            "Heap": 142 if self.esp32 else 25,
            "SleepMode": "Dynamic",
            "Sleep": 50,
            "LoadAvg": 19,
            "MqttCount": self.boots,
        }
        if self.kind == "plug":
            body["POWER"] = "ON" if self.relay_on else "OFF"
        body["Wifi"] = {
            "AP": 1,
            "SSId": "demo-net",
            "BSSId": "3C:28:6D:AD:BE:EA",
            "Channel": 6,
            "Mode": "HT20" if self.esp32 else "11n",
            "RSSI": 72 + self.rng.randint(0, 10),
            "Signal": -64 + self.rng.randint(0, 5),
            "LinkCount": self.boots,
            "Downtime": "0T00:00:03",
        }
        return body

    def power(self) -> float:
        if not self.relay_on:
            return 0.0
        return self.base_power * (0.9 + 0.2 * self.rng.random())

    def add_energy(self, sim_seconds: float, day: int) -> None:
        if day != self.day:
            self.yesterday_kwh, self.today_kwh, self.day = self.today_kwh, 0.0, day
        kwh = self.power() * sim_seconds / 3_600_000
        self.total_kwh += kwh
        self.today_kwh += kwh


def _time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S")


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days}T{hours:02d}:{minutes:02d}:{secs:02d}"


def default_devices(seed: int = 7) -> list[TasmotaDevice]:
    """A kitchen plug, an office plug that drops off, a washing machine and a climate sensor."""
    rng = random.Random(seed)
    return [
        TasmotaDevice("2CF432CC2FC5", "Kitchen fridge", "Sonoff S31", "14.3.0", "plug",
                      base_power=85, total_kwh=196.708, ip="192.0.2.21", rng=rng),
        TasmotaDevice("142B2F9FAF38", "Office desk", "Nous A1T", "13.4.0", "plug",
                      base_power=140, total_kwh=72.814, ip="192.0.2.22", flaps=True, rng=rng),
        TasmotaDevice("A4CF12D0E4B1", "Washing machine", "Shelly Plus Plug S", "14.3.0", "plug",
                      esp32=True, base_power=520, total_kwh=412.5, ip="192.0.2.23", rng=rng),
        TasmotaDevice("E8DB84A1B2C3", "Living room climate", "Generic", "14.3.0", "climate",
                      ip="192.0.2.24", rng=rng),
    ]  # fmt: skip


class TasmotaSimulator:
    """Publishes the devices' discovery and telemetry on one MQTT connection.

    ``tele_period``: seconds between STATE/SENSOR (Tasmota's TelePeriod, 300 by default on a
    device; shorter here so that the demo moves). The flapping device goes offline every
    ``flap_every`` seconds for ``flap_for`` seconds.
    """

    def __init__(
        self,
        devices: Iterable[TasmotaDevice] | None = None,
        clock: SimClock | None = None,
        tele_period: float = 5.0,
        flap_every: float = 90.0,
        flap_for: float = 20.0,
    ) -> None:
        self.devices = list(devices) if devices is not None else default_devices()
        self.clock = clock or SimClock()
        self.tele_period = tele_period
        self.flap_every = flap_every
        self.flap_for = flap_for
        self.published = 0

    async def _publish(
        self, client: aiomqtt.Client, topic: str, payload: Any, retain: bool = False
    ) -> None:
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        await client.publish(topic, data, retain=retain)
        self.published += 1

    async def announce(self, client: aiomqtt.Client, device: TasmotaDevice) -> None:
        """What a device sends when it (re)connects: LWT Online, discovery, STATE, SENSOR."""
        loop = asyncio.get_running_loop()
        device.online = True
        device.boots += 1
        device.started = device.started or loop.time()
        now = datetime.now()
        await self._publish(client, f"tele/{device.topic}/LWT", b"Online", retain=True)
        discovery = f"{DISCOVERY_PREFIX}/{device.mac}"
        await self._publish(client, f"{discovery}/config", device.discovery_config(), retain=True)
        sensors = {"sn": device.sensor(now), "ver": 1}
        await self._publish(client, f"{discovery}/sensors", sensors, retain=True)
        await self.telemetry(client, device)

    async def telemetry(self, client: aiomqtt.Client, device: TasmotaDevice) -> None:
        now = datetime.now()
        uptime = int(asyncio.get_running_loop().time() - device.started)
        await self._publish(client, f"tele/{device.topic}/STATE", device.state(now, uptime))
        await self._publish(client, f"tele/{device.topic}/SENSOR", device.sensor(now))

    async def run(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        for device in self.devices:
            device.next_flap = loop.time() + self.flap_every
            await self.announce(client, device)
        last_sim = self.clock.seconds()
        while True:
            await asyncio.sleep(self.tele_period)
            now_sim = self.clock.seconds()
            elapsed, last_sim = now_sim - last_sim, now_sim
            for device in self.devices:
                device.add_energy(elapsed, self.clock.day())
                await self._step(client, device, loop.time())

    async def _step(self, client: aiomqtt.Client, device: TasmotaDevice, now: float) -> None:
        if device.flaps and device.online and now >= device.next_flap:
            device.online = False
            device.offline_until = now + self.flap_for
            device.next_flap = now + self.flap_every
            await self._publish(client, f"tele/{device.topic}/LWT", b"Offline", retain=True)
            return
        if not device.online:
            if now >= device.offline_until:
                device.started = now  # it rebooted
                await self.announce(client, device)
            return
        await self.telemetry(client, device)
