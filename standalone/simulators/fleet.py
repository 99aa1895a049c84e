"""Every simulator at once, on one broker: what ``demo`` and ``simulate`` start and stop."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from .broker import BrokerAddress, EmbeddedBroker, publish_forever
from .clock import SimClock
from .opendtu import OpenDtuSimulator
from .tasks import cancel_and_wait
from .tasmota import TasmotaSimulator
from .tickrmeter import TickrMeterSimulator

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """``broker``: an external broker to publish to; else one is embedded on ``broker_host``
    and ``broker_port`` (0: a free port). ``speed``: simulated seconds per second for the
    solar day and the energy meters (144: a day in ten minutes)."""

    broker: BrokerAddress | None = None
    broker_host: str = "127.0.0.1"
    broker_port: int = 0
    http_host: str = "127.0.0.1"
    dtu_port: int = 0
    speed: float = 144.0
    start_hour: float = 10.0
    tickrmeter_devices: int = 300


class SimulatedFleet:
    """Starts the broker (unless external), the OpenDTU server and the MQTT publishers."""

    def __init__(self, options: FleetOptions | None = None) -> None:
        self.options = options or FleetOptions()
        self.clock = SimClock(self.options.start_hour, self.options.speed)
        self.tasmota = TasmotaSimulator(clock=self.clock)
        self.tickrmeter = TickrMeterSimulator(devices=self.options.tickrmeter_devices)
        self.opendtu = OpenDtuSimulator(clock=self.clock)
        self.broker: EmbeddedBroker | None = None
        self.broker_address: BrokerAddress | None = None
        self.dtu_url = ""
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def published(self) -> int:
        """MQTT messages and WebSocket pushes sent so far."""
        return self.tasmota.published + self.tickrmeter.published + self.opendtu.pushes

    async def start(self, devices: bool = True) -> None:
        """Start the servers, and the devices unless ``devices`` is False (``start_devices``
        then starts them, once whoever reads them is up). Raises OSError (or the broker's
        error) when a port cannot be had; then nothing is left running."""
        options = self.options
        try:
            if options.broker is None:
                self.broker = EmbeddedBroker(options.broker_host, options.broker_port)
                self.broker_address = await self.broker.start()
            else:
                self.broker_address = options.broker
            self.dtu_url = await self.opendtu.start(options.http_host, options.dtu_port)
        except BaseException:
            await self.stop()
            raise
        if devices:
            self.start_devices()

    def start_devices(self) -> None:
        """The MQTT devices connect and start publishing."""
        address = self.broker_address
        assert address is not None, "start() first"
        for name, publisher in (
            ("tasmota-simulator", self.tasmota.run),
            ("tickrmeter-simulator", self.tickrmeter.run),
        ):
            task = asyncio.create_task(publish_forever(address, name, publisher), name=name)
            task.add_done_callback(_report_end)
            self._tasks.append(task)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        await self.opendtu.stop()
        if self.broker is not None:
            await self.broker.stop()


def _report_end(task: asyncio.Task[None]) -> None:
    """A simulator is meant to run until stopped: say so if one ends by itself."""
    if task.cancelled():
        return
    if (err := task.exception()) is not None:
        _LOGGER.error("%s stopped: %s", task.get_name(), err, exc_info=err)
    else:
        _LOGGER.warning("%s finished", task.get_name())
