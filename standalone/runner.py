"""Starts the configured sources under supervision and feeds both outputs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from .core import config as config_module
from .core.exporters.line_protocol_output import LineProtocolOutput
from .core.exporters.prometheus import PrometheusSink
from .core.mqtt.session import BrokerSession
from .core.sample import Sample
from .core.source import SourceContext
from .core.sources import KINDS, create_source
from .core.supervisor import Supervisor
from .core.validators import split_listen
from .http_server import create_app
from .self_metrics import SelfMetrics

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT = 4.0


class Runner:
    def __init__(
        self,
        config: Mapping[str, Any],
        config_path: Path | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        prom_cfg = config["prometheus"]
        lp_cfg = config["line_protocol"]
        self.prometheus = PrometheusSink(ttl=prom_cfg["ttl"])
        for kind in KINDS.values():
            self.prometheus.add_help(kind.source_class.HELP)
        self.line_protocol = LineProtocolOutput(
            output=lp_cfg["output"],
            max_buffer=lp_cfg["max_buffer"],
            token=lp_cfg["token"],
            timeout=lp_cfg["timeout"],
            stream=stdout,
        )
        # The sink renders itself (see PrometheusSink.render); the registry holds the rest.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SelfMetrics(self))
        self.supervisor = Supervisor(self.emit)
        self.brokers: dict[str, BrokerSession] = {}
        self._broker_tasks: dict[str, asyncio.Task[None]] = {}
        self._context = SourceContext(self.brokers)
        self._web_runner: web.AppRunner | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.bound_port: int | None = None

    def render_metrics(self) -> bytes:
        return self.prometheus.render().encode() + generate_latest(self.registry)

    def emit(self, sample: Sample) -> None:
        self.prometheus.add(sample)
        self.line_protocol.add(sample)

    async def start(self) -> None:
        listen = self.config["prometheus"]["listen"]
        if listen:
            host, port = split_listen(listen)
            self._web_runner = web.AppRunner(create_app(self.render_metrics), access_log=None)
            await self._web_runner.setup()
            await web.TCPSite(self._web_runner, host, port).start()
            self.bound_port = self._web_runner.addresses[0][1]
            _LOGGER.info("serving /metrics and /healthz on %s:%s", host, self.bound_port)
        self._start_brokers(self.config["brokers"])
        for source_config in self.config["sources"]:
            self._start_source(source_config)
        self._flusher = asyncio.create_task(self._flush_forever(), name="line-protocol-flush")

    def _start_brokers(self, brokers: Mapping[str, Mapping[str, Any]]) -> None:
        """One session per broker, shared by every source that names it."""
        for name, settings in brokers.items():
            if name not in self.brokers:
                session = self.brokers[name] = BrokerSession(name, settings)
                self._broker_tasks[name] = asyncio.create_task(session.run(), name=f"mqtt:{name}")

    def _start_source(self, source_config: Mapping[str, Any]) -> None:
        self.supervisor.start(create_source(source_config, self._context))
        _LOGGER.info("started source %s (%s)", source_config["name"], source_config["kind"])

    async def _flush_forever(self) -> None:
        interval = self.config["line_protocol"]["flush_interval"]
        while True:
            await asyncio.sleep(interval)
            await self.line_protocol.flush()

    async def reload(self) -> None:
        """Re-read the config file; restart only the sources whose config changed."""
        if self.config_path is None:
            _LOGGER.info("reload requested, but running on the built-in config: nothing to do")
            return
        try:
            new = config_module.load(self.config_path)
        except config_module.ConfigError as err:
            _LOGGER.error("reload refused, keeping the running config: %s", err)
            return
        for section in ("prometheus", "line_protocol"):
            if new[section] != self.config[section]:
                _LOGGER.warning("[%s] changed: it takes effect after a restart", section)
        for name, settings in new["brokers"].items():
            if name in self.config["brokers"] and settings != self.config["brokers"][name]:
                _LOGGER.warning("[brokers.%s] changed: it takes effect after a restart", name)
        self._start_brokers(new["brokers"])
        old_sources = {s["name"]: s for s in self.config["sources"]}
        new_sources = {s["name"]: s for s in new["sources"]}
        changed = [n for n in old_sources if old_sources[n] != new_sources.get(n)]
        for name in changed:
            await self.supervisor.stop(name)
            _LOGGER.info("stopped source %s", name)
        for name, source_config in new_sources.items():
            if name in changed or name not in old_sources:
                self._start_source(source_config)
        self.config = {
            **self.config,
            "sources": new["sources"],
            "brokers": {**new["brokers"], **self.config["brokers"]},
        }
        _LOGGER.info(
            "config reloaded: %d sources restarted or added, %d unchanged",
            sum(1 for n in new_sources if n in changed or n not in old_sources),
            sum(1 for n in new_sources if n in old_sources and n not in changed),
        )

    async def stop(self) -> None:
        """Stop sources, flush every output, close the server."""
        await self.supervisor.stop_all()
        for task in self._broker_tasks.values():
            task.cancel()
        await asyncio.gather(*self._broker_tasks.values(), return_exceptions=True)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.line_protocol.close()
        if self._web_runner is not None:
            await self._web_runner.cleanup()
        _LOGGER.info("stopped; %d line protocol lines written", self.line_protocol.lines_written)

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        reloads: set[asyncio.Task[None]] = set()

        def on_hup() -> None:
            task = asyncio.create_task(self.reload())
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, on_hup)
        await self.start()
        try:
            await self._stopping.wait()
            _LOGGER.info("stopping")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            try:
                await asyncio.wait_for(self.stop(), STOP_TIMEOUT)
            except TimeoutError:
                _LOGGER.error("stop took longer than %.0f s; exiting anyway", STOP_TIMEOUT)
