"""A TickrMeter fleet over MQTT: devices asking for stock prices, a backend answering them.

Each device publishes ``{"type":"UPDATE","device":<id>,"symbol":...}`` on
``STOCKPRICEUPDATE`` every ``request_every`` seconds (jittered), and the backend answers on
the device's own topic (its 12-hex-digit id) after a symbol-dependent delay. Devices report
``DEVICESTATUS_RES`` (firmware, battery, voltage, uptime, Wi-Fi losses) at start and every
``status_every`` seconds, announce boots on ``TICKRMETERBOOT``/``DEVICE_BOOTED`` and open
streams on ``HTTPSTREAMSTOCKS``, with the payloads of bench/fleet_stream.py.

Two symbols misbehave, so that the demo has something to find: ``SLOW_SYMBOL`` answers in
seconds rather than milliseconds, and the backend of ``OUTAGE_SYMBOL`` stops answering for
``outage_for`` seconds every ``outage_every`` seconds (its requests time out).
"""

from __future__ import annotations

import asyncio
import heapq
import random
from dataclasses import dataclass
from typing import Any

import aiomqtt
import orjson

SYMBOLS = (
    "AAPL", "BTC", "ETH", "TSLA", "MSFT", "NVDA", "AMZN", "GOOG", "META", "NFLX",
    "AMD", "INTC", "SPY", "QQQ", "DOGE", "SOL", "XRP", "COIN", "PLTR", "UBER",
)  # fmt: skip
SLOW_SYMBOL = "PLTR"
OUTAGE_SYMBOL = "DOGE"
FIRMWARES = (("62p", 60), ("61k", 25), ("60b", 10), ("58", 5))
FLASH_IDS = ("c84016", "ef4016", "204016")

REQUEST_TOPIC = "STOCKPRICEUPDATE"
STATUS_TOPIC = "DEVICESTATUS_RES"
BOOT_TOPICS = ("TICKRMETERBOOT", "DEVICE_BOOTED")
STREAM_TOPIC = "HTTPSTREAMSTOCKS"

# Events in the schedule: (due, sequence, kind, device, symbol).
REQUEST, RESPONSE, STATUS, BOOT = "request", "response", "status", "boot"


@dataclass
class Device:
    id: str
    firmware: str
    flash_id: str
    battery: float
    charging: bool
    boots: int = 1
    wifi_lost: int = 0
    booted_at: float = 0.0


class TickrMeterSimulator:
    """``devices`` devices on ``symbols``; times are seconds of the event loop's clock."""

    def __init__(
        self,
        devices: int = 300,
        request_every: float = 10.0,
        status_every: float = 60.0,
        outage_every: float = 120.0,
        outage_for: float = 40.0,
        boot_chance: float = 0.002,
        slow_latency: tuple[float, float] = (2.0, 4.0),
        seed: int = 4,
    ) -> None:
        self.rng = random.Random(seed)
        self.request_every = request_every
        self.status_every = status_every
        self.outage_every = outage_every
        self.outage_for = outage_for
        self.boot_chance = boot_chance
        self.slow_latency = slow_latency
        self.devices = [self._device(i) for i in range(devices)]
        self.published = 0
        self.unanswered = 0
        self._queue: list[tuple[float, int, str, int, str]] = []
        self._sequence = 0
        self._started = 0.0

    def _device(self, index: int) -> Device:
        rng = self.rng
        firmware = rng.choices([f for f, _ in FIRMWARES], [w for _, w in FIRMWARES])[0]
        return Device(
            id=f"{rng.getrandbits(48):012X}",
            firmware=firmware,
            flash_id=rng.choice(FLASH_IDS),
            battery=rng.uniform(15, 100),
            charging=rng.random() < 0.2,
        )

    def in_outage(self, now: float) -> bool:
        """Whether OUTAGE_SYMBOL's backend is down; the first outage starts after one
        quiet stretch, so that the symbol is seen answering first."""
        quiet = self.outage_every - self.outage_for
        return (now - self._started) % self.outage_every >= quiet

    def latency(self, symbol: str) -> float:
        """Seconds the backend takes for ``symbol``: about 0.1 to 0.5 s, the slow one
        ``slow_latency`` (2 to 4 s)."""
        if symbol == SLOW_SYMBOL:
            return self.rng.uniform(*self.slow_latency)
        base = 0.05 + 0.02 * SYMBOLS.index(symbol)
        return base + self.rng.expovariate(1 / 0.08)

    def _schedule(self, due: float, kind: str, device: int, symbol: str = "") -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (due, self._sequence, kind, device, symbol))

    def status_payload(self, device: Device, now: float) -> bytes:
        uptime = int(now - device.booted_at) + 60
        return orjson.dumps(
            {
                "status": "online",
                "firmware_version": device.firmware,
                "device": device.id,
                "battery": str(round(device.battery)),
                "iv": "4" if device.firmware >= "61" else "3",
                "flash_id": device.flash_id,
                "charging": "1" if device.charging else "0",
                "vin": f"{3.4 + device.battery / 125:.2f}",
                "uptime": str(uptime),
                "wifi_lost": str(device.wifi_lost),
            }
        )

    def response_payload(self, symbol: str) -> bytes:
        return orjson.dumps(
            {
                "symbol": symbol,
                "price": f"${self.rng.uniform(1, 120_000):.0f}",
                "type": "UPDATE",
                "change": f"{self.rng.uniform(-5, 5):+.2f}%",
                "currency": "USD",
            }
        )

    def start(self, now: float) -> None:
        """Fill the schedule: every device reports its status within two seconds, then
        starts asking for prices."""
        self._started = now
        self._queue.clear()
        for index, device in enumerate(self.devices):
            device.booted_at = now - self.rng.uniform(60, 86_400)
            self._schedule(now + self.rng.uniform(0, 2), STATUS, index)
            self._schedule(now + self.rng.uniform(0.5, self.request_every), REQUEST, index)

    def due(self, now: float) -> list[tuple[str, bytes]]:
        """The messages due by ``now``, in order; schedules what follows from them."""
        out: list[tuple[str, bytes]] = []
        while self._queue and self._queue[0][0] <= now:
            at, _, kind, index, symbol = heapq.heappop(self._queue)
            out.extend(self._event(at, kind, index, symbol))
        return out

    def _event(self, at: float, kind: str, index: int, symbol: str) -> list[tuple[str, bytes]]:
        device = self.devices[index]
        if kind == RESPONSE:
            return [(device.id, self.response_payload(symbol))]
        if kind == STATUS:
            device.battery = max(5.0, device.battery - self.rng.uniform(0, 0.5))
            self._schedule(at + self.status_every * self.rng.uniform(0.8, 1.2), STATUS, index)
            return [(STATUS_TOPIC, self.status_payload(device, at))]
        if kind == BOOT:
            device.boots += 1
            device.booted_at = at
            boot = {"type": "BOOT", "device": device.id}
            stream = {
                "device": device.id,
                "params": {
                    "url": "https://api.example.com/stream",
                    "symbols": self.rng.sample(SYMBOLS, 3),
                },
            }
            return [
                (self.rng.choice(BOOT_TOPICS), orjson.dumps(boot)),
                (STATUS_TOPIC, self.status_payload(device, at)),
                (STREAM_TOPIC, orjson.dumps(stream)),
            ]
        # REQUEST
        self._schedule(at + self.request_every * self.rng.uniform(0.7, 1.3), REQUEST, index)
        if self.rng.random() < self.boot_chance:
            if self.rng.random() < 0.3:
                device.wifi_lost += 1
            self._schedule(at + self.rng.uniform(5, 15), BOOT, index)
        symbol = self.rng.choice(SYMBOLS)
        request: dict[str, Any] = {"type": "UPDATE", "device": device.id, "symbol": symbol}
        if symbol == OUTAGE_SYMBOL and self.in_outage(at):
            self.unanswered += 1
        else:
            self._schedule(at + self.latency(symbol), RESPONSE, index, symbol)
        return [(REQUEST_TOPIC, orjson.dumps(request))]

    async def run(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        if not self._started:
            self.start(loop.time())
        while True:
            for topic, payload in self.due(loop.time()):
                await client.publish(topic, payload)
                self.published += 1
            wait = self._queue[0][0] - loop.time() if self._queue else 1.0
            await asyncio.sleep(min(max(wait, 0.01), 1.0))
