"""Starts the configured sources under supervision and feeds both outputs.

Lifecycle rules, each tested against a real process:
- start: the HTTP listen address is resolved and bound before any broker or source starts, so
  a port in use is one error line and exit code 2 with nothing half-started;
- SIGHUP: every source of the new config (and every new broker session) is built before any
  running one is stopped; a config that does not load or build is refused whole;
- SIGTERM/SIGINT: sources stop, the last lines are flushed, exit 0; a second signal only says
  that shutdown is under way, and ``shutdown_timeout`` bounds the whole of it;
- stdout closed by its reader: one ERROR line and exit code 1, so the supervisor (systemd,
  telegraf ``inputs.execd``) restarts the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from .core import config as config_module
from .core.dead_letter import DeadLetterFile
from .core.errors import describe_error
from .core.exporters.line_protocol_output import LineProtocolOutput, OutputClosed
from .core.exporters.prometheus import PrometheusSink
from .core.log_context import context_for
from .core.mqtt.session import BrokerSession
from .core.rejects import RejectSink
from .core.sample import Sample
from .core.source import Source, SourceContext
from .core.sources import KINDS, create_source
from .core.sources.agents.endpoint import handle_agent
from .core.sources.agents.source import AgentsSource, FlushOutcome
from .core.supervisor import Supervisor
from .core.validators import split_listen
from .heap import trim_forever
from .http_server import MAX_CONNECTIONS, ServerHandle, create_app, start_server
from .http_stats import HttpStats
from .listen import why_not
from .self_metrics import SelfMetrics

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
STDOUT_CLOSED = "stdout was closed by its reader; exiting so the supervisor restarts fleet-metrics"

AGENT_PATH = "/api/agent"

# Seconds of the shutdown deadline kept for closing sessions and the server after the flush.
CLOSE_RESERVE = 0.5

# Keys that SIGHUP applies; every other change waits for a restart (and is said to).
RELOADED_KEYS = frozenset({"sources", "brokers", "shutdown_timeout"})


class StartError(Exception):
    """The runner cannot start; the message is one line that names the setting."""


class BuildError(Exception):
    """A source of an otherwise valid config could not be built."""


@dataclass
class _Plan:
    """What a config needs beyond what runs: built, not yet started."""

    sessions: dict[str, BrokerSession] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    stop_sources: list[str] = field(default_factory=list)
    retire_brokers: list[str] = field(default_factory=list)
    unchanged: int = 0


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
        self.dead_letter: DeadLetterFile | None = None
        on_rejected: RejectSink | None = None
        if config["dead_letter"]:
            self.dead_letter = DeadLetterFile(
                config["dead_letter"], config["dead_letter_max_bytes"]
            )
            on_rejected = self.dead_letter.record
        self._on_rejected = on_rejected
        self.prometheus = PrometheusSink(ttl=prom_cfg["ttl"], max_series=prom_cfg["max_series"])
        for kind in KINDS.values():
            self.prometheus.add_help(kind.source_class.HELP)
        self.line_protocol = LineProtocolOutput(
            output=lp_cfg["output"],
            max_buffer=lp_cfg["max_buffer"],
            token=lp_cfg["token"],
            username=lp_cfg["username"],
            password=lp_cfg["password"],
            timeout=lp_cfg["timeout"],
            stream=stdout,
            batch_lines=lp_cfg["batch_lines"],
            batch_bytes=lp_cfg["batch_bytes"],
            on_rejected=on_rejected,
        )
        # The sink renders itself (see PrometheusSink.render); the registry holds the rest.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SelfMetrics(self))
        self.supervisor = Supervisor(self.emit)
        self.brokers: dict[str, BrokerSession] = {}
        self._broker_tasks: dict[str, asyncio.Task[None]] = {}
        self._server: ServerHandle | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._dropped_seen = 0  # line protocol drops the agents' checkpoints have seen
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[None]] = set()
        self._started = False
        self.exit_code = EXIT_OK
        self.bound_port: int | None = None

    @property
    def http_stats(self) -> HttpStats | None:
        return self._server.stats if self._server is not None else None

    def render_metrics(self) -> Iterator[bytes]:
        """The exposition in pieces: the HTTP server lets the loop run between them."""
        for piece in self.prometheus.render_chunks():
            yield piece.encode()
        agents = self.agents_source()
        if agents is not None:  # its hosts, mapped when scraped (agents.exposition)
            for piece in agents.exposition.render_chunks():
                yield piece.encode()
        yield generate_latest(self.registry)

    def emit(self, sample: Sample) -> None:
        self.prometheus.add(sample)
        self.line_protocol.add(sample)

    async def start(self) -> None:
        """Bind, then start brokers and sources; StartError leaves nothing running."""
        plan = self._plan(self.config)
        await self._listen(self.config["prometheus"]["listen"])
        self._apply_brokers(plan)
        for source in plan.sources.values():
            self._start_source(source)
        self._started = True
        self._flusher = asyncio.create_task(self._flush_forever(), name="line-protocol-flush")
        self._trimmer = asyncio.create_task(trim_forever(), name="heap-trim")

    async def _listen(self, listen: str) -> None:
        if not listen:
            return
        host, port = split_listen(listen)
        app = create_app(self.render_metrics)
        app.router.add_get(AGENT_PATH, self._agent_endpoint)
        # Each connected agent holds a connection: room for every host beyond the usual cap.
        max_connections = MAX_CONNECTIONS + sum(
            s["max_hosts"] for s in self.config["sources"] if s["kind"] == "agents"
        )
        try:
            self._server = await start_server(app, host, port, max_connections=max_connections)
        except OSError as err:
            problem = await why_not(host, port, err)
            raise StartError(f"prometheus.listen: cannot listen on {listen}: {problem}") from err
        self.bound_port = self._server.port
        _LOGGER.info("serving /metrics and /healthz on %s:%s", host, self.bound_port)

    def agents_source(self) -> AgentsSource | None:
        """The running agents source (one at most, see config.validate)."""
        for entry in self.supervisor.entries.values():
            if isinstance(entry.source, AgentsSource):
                return entry.source
        return None

    async def _agent_endpoint(self, request: web.Request) -> web.StreamResponse:
        """``/api/agent``: looked up per request, so a reload that replaces the source works."""
        source = self.agents_source()
        if source is None:
            raise web.HTTPNotFound(text="no agents source is configured\n")
        if not source.ready:
            raise web.HTTPServiceUnavailable(text="the agents source is starting\n")
        return await handle_agent(request, source.hub)

    def _plan(self, new: Mapping[str, Any]) -> _Plan:
        """Build what ``new`` needs that is not already running; BuildError if a source fails.

        A broker whose settings changed gets a new session, and the sources on it are
        rebuilt on that session even if their own settings did not change.
        """
        running = self.config if self._started else {"brokers": {}, "sources": []}
        plan = _Plan()
        brokers: dict[str, BrokerSession] = {}
        for name, settings in new["brokers"].items():
            session = self.brokers.get(name)
            if session is None or running["brokers"].get(name) != settings:
                session = plan.sessions[name] = BrokerSession(name, settings)
            brokers[name] = session
        plan.retire_brokers = [
            name for name in self.brokers if name in plan.sessions or name not in brokers
        ]
        context = SourceContext(brokers, on_rejected=self._on_rejected)
        old_sources = {s["name"]: s for s in running["sources"]}
        for index, source_config in enumerate(new["sources"]):
            name = source_config["name"]
            if old_sources.get(name) == source_config and (
                source_config.get("broker") not in plan.sessions
            ):
                plan.unchanged += 1
                continue
            try:
                plan.sources[name] = create_source(source_config, context)
            except Exception as err:
                raise BuildError(
                    f"sources[{index}] ({name}): cannot be built: {describe_error(err)}"
                ) from err
        wanted = {s["name"] for s in new["sources"]}
        plan.stop_sources = [n for n in old_sources if n not in wanted or n in plan.sources]
        return plan

    def _apply_brokers(self, plan: _Plan) -> list[asyncio.Task[None]]:
        """Start the plan's sessions; returns the tasks of the sessions they replace."""
        retired = [self._broker_tasks.pop(name) for name in plan.retire_brokers]
        for name in plan.retire_brokers:
            del self.brokers[name]
        for name, session in plan.sessions.items():
            self.brokers[name] = session
            self._broker_tasks[name] = asyncio.create_task(
                session.run(), name=f"mqtt:{name}", context=context_for(broker=name)
            )
        return retired

    def _start_source(self, source: Source) -> None:
        if isinstance(source, AgentsSource):
            source.flush_output = self._flush_for_agents  # acks wait for the output
            source.write_lines = self.line_protocol.add_lines  # encoded by the hub
            # Pause the agents before the output's buffer would drop their lines.
            limits = source.hub.limits
            room = max(1, self.line_protocol.max_buffer // 2)
            if limits.max_pending_lines > room:
                source.hub.limits = replace(limits, max_pending_lines=room)
            source.exposition.ttl = self.config["prometheus"]["ttl"]
        self.supervisor.start(source)
        _LOGGER.info(
            "started source %s (%s)", source.name, source.kind, extra={"source": source.name}
        )

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config["line_protocol"]["flush_interval"])
            try:
                agents = self.agents_source()
                if agents is not None:
                    await agents.checkpoint()  # flushes, then saves and acks what it wrote
                else:
                    await self.line_protocol.flush()
            except OutputClosed:
                self._output_closed()
                return

    async def _flush_for_agents(self) -> FlushOutcome:
        """Flush, and say what became of every line buffered before the call: ``written``
        (or refused by the write API: a retry would not help), ``pending`` (kept for a
        retry), or ``lost`` (the buffer's cap dropped lines since the last call: the agents
        must send those batches again). Lines leave the buffer in order, so counting them
        is enough; an empty buffer settles it too."""
        output = self.line_protocol
        before = output.lines_written + output.lines_rejected + output.pending
        await output.flush()
        lost = output.dropped != self._dropped_seen
        self._dropped_seen = output.dropped
        if lost:
            return "lost"
        gone = output.lines_written + output.lines_rejected
        return "written" if output.pending == 0 or gone >= before else "pending"

    def _output_closed(self) -> None:
        if self.exit_code == EXIT_OK:
            _LOGGER.error(STDOUT_CLOSED)
        self.exit_code = EXIT_FAILED
        self._stopping.set()

    def request_reload(self) -> None:
        """SIGHUP: reload in the background; reloads run one at a time."""
        if self._stopping.is_set():
            _LOGGER.info("reload requested while stopping: ignored")
            return
        task = asyncio.create_task(self.reload(), name="reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> None:
        """Re-read the config file; restart only what changed, or nothing at all."""
        if self.config_path is None:
            _LOGGER.info("reload requested, but running on the built-in config: nothing to do")
            return
        async with self._reload_lock:
            try:
                new = config_module.load(self.config_path)
                plan = self._plan(new)
            except (config_module.ConfigError, BuildError) as err:
                _LOGGER.error("reload refused, keeping the running config: %s", err)
                return
            self._warn_restart_only(new)
            retired = self._apply_brokers(plan)
            for name in plan.stop_sources:
                await self.supervisor.stop(name)
                _LOGGER.info("stopped source %s", name, extra={"source": name})
            for source in plan.sources.values():
                self._start_source(source)
            for task in retired:
                task.cancel()
            await asyncio.gather(*retired, return_exceptions=True)
            self.config = {
                **{key: value for key, value in new.items() if key in RELOADED_KEYS},
                **{key: value for key, value in self.config.items() if key not in RELOADED_KEYS},
            }
            _LOGGER.info(
                "config reloaded: %d sources restarted or added, %d unchanged",
                len(plan.sources),
                plan.unchanged,
            )

    def _warn_restart_only(self, new: Mapping[str, Any]) -> None:
        for key, value in new.items():
            if key not in RELOADED_KEYS and value != self.config.get(key):
                shown = f"[{key}]" if isinstance(value, Mapping) else key
                _LOGGER.warning("%s changed: it takes effect after a restart", shown)

    async def stop(self, flush_seconds: float = 5.0) -> bool:
        """Stop sources, flush every output (for at most ``flush_seconds``), close the server.

        Returns whether everything buffered was written.
        """
        for task in self._reloads:
            task.cancel()
        await asyncio.gather(*self._reloads, return_exceptions=True)
        await self.supervisor.stop_all()
        for task in self._broker_tasks.values():
            task.cancel()
        await asyncio.gather(*self._broker_tasks.values(), return_exceptions=True)
        for background in (self._flusher, self._trimmer):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        try:
            await self.line_protocol.close(flush_seconds)
        except OutputClosed:
            self._output_closed()
        if self.dead_letter is not None:
            self.dead_letter.close()
        if self._server is not None:
            await self._server.close()
        _LOGGER.info("stopped; %d line protocol lines written", self.line_protocol.lines_written)
        return self.line_protocol.pending == 0

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_until_stopped(self) -> int:
        """Run until SIGTERM/SIGINT (or a closed stdout); returns the exit code.

        StartError propagates with nothing left running. The signal handlers stay installed
        until the loop closes, so a signal during shutdown never interrupts it.
        """
        loop = asyncio.get_running_loop()
        deadline: float | None = None

        def on_stop_signal(sig: signal.Signals) -> None:
            if deadline is None:
                _LOGGER.info("%s: stopping", sig.name)
                self._stopping.set()
            else:
                _LOGGER.warning(
                    "%s: already stopping; the shutdown ends within %.1f s",
                    sig.name,
                    max(0.0, deadline - loop.time()),
                )

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        await self.start()
        await self._stopping.wait()
        timeout = self.config["shutdown_timeout"]
        deadline = loop.time() + timeout
        # The flush gets what is left once sources and sessions are down, less a moment for
        # closing the HTTP session and server; the deadline bounds the whole.
        clean = False
        try:
            async with asyncio.timeout_at(deadline):
                clean = await self.stop(flush_seconds=max(0.1, timeout - CLOSE_RESERVE))
        except TimeoutError:
            pass
        if not clean:
            _LOGGER.error(
                "shutdown did not finish within %g s (shutdown_timeout): %d lines not written",
                timeout,
                self.line_protocol.pending,
            )
            self.exit_code = EXIT_FAILED
        return self.exit_code
