"""The runner's own health as Prometheus metrics, computed at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, get_args

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .core.exporters.circuit_breaker import State
from .core.sources.agents.source import AgentsSource

if TYPE_CHECKING:
    from .runner import Runner


class SelfMetrics(Collector):
    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        runner = self._runner
        build = GaugeMetricFamily(
            "fleet_metrics_build_info", "Constant 1, labelled with the version.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        yield build

        labels = ["source", "kind"]
        samples = CounterMetricFamily(
            "fleet_metrics_source_samples", "Samples a source produced.", labels=labels
        )
        messages = CounterMetricFamily(
            "fleet_metrics_source_messages", "Messages a source received.", labels=labels
        )
        errors = CounterMetricFamily(
            "fleet_metrics_source_parse_errors",
            "Messages a source could not parse and skipped.",
            labels=labels,
        )
        rejected = CounterMetricFamily(
            "fleet_metrics_source_rejected",
            "Messages a source skipped, by why (json, shape, too_large, name, cap, exception...).",
            labels=[*labels, "rejection"],
        )
        restarts = CounterMetricFamily(
            "fleet_metrics_source_restarts", "Restarts after a source failed.", labels=labels
        )
        age = GaugeMetricFamily(
            "fleet_metrics_source_last_sample_age_seconds",
            "Seconds since a source last produced a sample.",
            labels=labels,
        )
        now = time.monotonic()
        for name, entry in sorted(runner.supervisor.entries.items()):
            source = entry.source
            values = [name, source.kind]
            stats = source.stats
            samples.add_metric(values, stats.samples)
            messages.add_metric(values, stats.messages)
            errors.add_metric(values, stats.parse_errors)
            for rejection, count in sorted(source.rejects.by_kind.items()):
                rejected.add_metric([*values, rejection], count)
            restarts.add_metric(values, entry.restarts)
            if stats.last_sample_monotonic is not None:
                age.add_metric(values, now - stats.last_sample_monotonic)
        yield from (samples, messages, errors, rejected, restarts, age)

        broker_labels = ["broker"]
        connected = GaugeMetricFamily(
            "fleet_metrics_mqtt_connected",
            "1 while the broker session is up.",
            labels=broker_labels,
        )
        reconnects = CounterMetricFamily(
            "fleet_metrics_mqtt_reconnects",
            "Reconnections after a lost session.",
            labels=broker_labels,
        )
        received = CounterMetricFamily(
            "fleet_metrics_mqtt_messages",
            "Messages received from the broker.",
            labels=broker_labels,
        )
        handler_errors = CounterMetricFamily(
            "fleet_metrics_mqtt_handler_errors",
            "Messages whose handler raised (a bug; the message was skipped).",
            labels=broker_labels,
        )
        subscription_failures = CounterMetricFamily(
            "fleet_metrics_mqtt_subscription_failures",
            "Subscriptions the broker refused or did not answer (each attempt).",
            labels=broker_labels,
        )
        outage = GaugeMetricFamily(
            "fleet_metrics_mqtt_outage_seconds",
            "How long the broker has been unreachable; 0 while connected.",
            labels=broker_labels,
        )
        for name, session in sorted(runner.brokers.items()):
            connected.add_metric([name], 1 if session.connected else 0)
            reconnects.add_metric([name], session.reconnects)
            received.add_metric([name], session.messages)
            handler_errors.add_metric([name], session.handler_errors)
            subscription_failures.add_metric([name], session.subscription_failures)
            started = session.outage_started
            outage.add_metric([name], 0 if started is None else now - started)
        yield from (connected, reconnects, received, handler_errors, subscription_failures, outage)

        output = runner.line_protocol
        yield from _counters(
            "fleet_metrics_line_protocol_",
            [
                (
                    "lines_written",
                    "Line protocol lines written to the output.",
                    output.lines_written,
                ),
                ("dropped_lines", "Lines dropped because the buffer was full.", output.dropped),
                ("write_errors", "Failed writes to the line protocol output.", output.write_errors),
                (
                    "lines_rejected",
                    "Lines the write API refused (4xx); they went to the dead-letter file if set.",
                    output.lines_rejected,
                ),
                (
                    "retries",
                    "Chunks sent again after a 5xx, a timeout or a connection error.",
                    output.retries,
                ),
                (
                    "splits",
                    "Chunks split in half because the write API found them too large (413).",
                    output.splits,
                ),
                (
                    "unencodable_samples",
                    "Samples no line protocol line can carry (skipped).",
                    output.unencodable,
                ),
                (
                    "breaker_opened",
                    "Times the circuit breaker opened (the write API failed repeatedly).",
                    output.breaker.opened,
                ),
            ],
        )
        yield GaugeMetricFamily(
            "fleet_metrics_line_protocol_pending_lines",
            "Lines waiting for the next flush.",
            value=output.pending,
        )
        breaker = GaugeMetricFamily(
            "fleet_metrics_line_protocol_breaker_state",
            "1 for the write API circuit breaker's current state, 0 for the others.",
            labels=["state"],
        )
        for state in get_args(State):
            breaker.add_metric([state], 1 if output.breaker_state == state else 0)
        yield breaker
        dead_letter = runner.dead_letter
        if dead_letter is not None:
            yield from _counters(
                "fleet_metrics_dead_letter_",
                [
                    (
                        "records",
                        "Rejected messages and lines written to the dead-letter file.",
                        dead_letter.records,
                    ),
                    (
                        "dropped",
                        "Records not written because too many were waiting.",
                        dead_letter.dropped,
                    ),
                    ("write_errors", "Failed writes to the dead-letter file.", dead_letter.errors),
                ],
            )
        http = runner.http_stats
        if http is not None:
            yield GaugeMetricFamily(
                "fleet_metrics_http_connections_open",
                "HTTP connections open.",
                value=http.connections_open,
            )
            yield from _counters(
                "fleet_metrics_",
                [
                    (
                        "http_connections_accepted",
                        "HTTP connections accepted.",
                        http.connections_accepted,
                    ),
                    (
                        "http_connections_refused",
                        "HTTP connections closed at once: the connection cap was reached.",
                        http.connections_refused,
                    ),
                    (
                        "http_header_timeouts",
                        "HTTP connections closed: no complete request head in time.",
                        http.header_timeouts,
                    ),
                    (
                        "http_write_timeouts",
                        "HTTP connections closed: the client stopped reading.",
                        http.write_timeouts,
                    ),
                    (
                        "http_bad_requests",
                        "Malformed HTTP requests answered 400.",
                        http.bad_requests,
                    ),
                    ("scrapes", "/metrics requests answered.", http.scrapes),
                    (
                        "scrape_renders",
                        "Renders of /metrics; concurrent scrapes share one.",
                        http.renders,
                    ),
                    (
                        "scrape_render_errors",
                        "Renders of /metrics that failed.",
                        http.render_errors,
                    ),
                    (
                        "scrape_render_seconds",
                        "Seconds spent rendering /metrics.",
                        http.render_seconds,
                    ),
                ],
            )
        yield GaugeMetricFamily(
            "fleet_metrics_prometheus_series",
            "Series currently held for /metrics.",
            value=runner.prometheus.series_count(),
        )
        yield CounterMetricFamily(
            "fleet_metrics_prometheus_series_evicted",
            "Series forgotten to stay within [prometheus] max_series.",
            value=runner.prometheus.evicted,
        )
        agents = runner.agents_source()
        if agents is not None:
            yield from _agents(agents)


def _agents(source: AgentsSource) -> Iterator[Metric]:
    """The agents endpoint and hub: who connects, who is refused, what arrives.

    Per-host batch counters are the source's own ``fleet_agent_*{host}`` series; these are
    their sums over all hosts, plus what has no host (refusals, faults).
    """
    hub = source.hub
    stats = hub.stats
    limiter = hub.limiter
    states = hub.hosts.values()
    yield from _counters(
        "fleet_metrics_agents_",
        [
            (
                "connections",
                "Agent connections accepted (hello and token good).",
                stats.connections,
            ),
            (
                "auth_failures",
                "Hellos refused: unknown host, wrong token or revoked host (one count).",
                stats.auth_failures,
            ),
            (
                "missing_token",
                "Upgrade requests without Authorization: Bearer (answered 401).",
                stats.missing_token,
            ),
            (
                "token_in_url",
                "Upgrade requests with the token in the URL (answered 400).",
                stats.token_in_url,
            ),
            (
                "rate_limited",
                "Connections closed at once: too many failed attempts from the address.",
                stats.rate_limited,
            ),
            (
                "failed_attempts",
                "Failed attempts the rate limiter counted (auth failures, missing tokens).",
                limiter.failed,
            ),
            (
                "limiter_evicted",
                "Addresses the rate limiter forgot because its table was full.",
                limiter.evicted,
            ),
            ("replaced", "Connections replaced by a newer one of the same host.", stats.replaced),
            (
                "revoked",
                "Live connections cut: the host was removed or its token rotated.",
                stats.revoked,
            ),
            (
                "batches_received",
                "Batches applied, over all hosts.",
                sum(s.batches_received for s in states),
            ),
            (
                "batches_replayed",
                "Applied batches collected before their connection began, over all hosts.",
                sum(s.batches_replayed for s in states),
            ),
            (
                "batches_duplicate",
                "Batches seen before (acked, not applied again), over all hosts.",
                sum(s.batches_duplicate for s in states),
            ),
            (
                "seq_gaps",
                "Batches never received (gaps in sequence numbers), over all hosts.",
                sum(s.seq_gaps for s in states),
            ),
            (
                "samples_dropped",
                "Samples dropped by the per-batch or per-host series cap, over all hosts.",
                sum(s.samples_dropped for s in states),
            ),
            (
                "batches_rewound",
                "Applied batches the line protocol output dropped before they were acked;"
                " their agents were disconnected to send them again.",
                stats.rewound,
            ),
            (
                "throttled",
                "Times the agents were paused because the outputs were behind (backpressure).",
                stats.throttled,
            ),
            (
                "checkpoints_failed",
                "Times applied batches could not be made durable (output or database failed);"
                " their acks wait for the next flush.",
                source.checkpoints_failed,
            ),
        ],
    )
    closed = CounterMetricFamily(
        "fleet_metrics_agents_protocol_errors",
        "Connections closed for a bad message, by WebSocket close code"
        " (4000 malformed, 4003 too large, 4010 version, 1009/1002 from the WebSocket layer).",
        labels=["code"],
    )
    for code, count in sorted(stats.closed_by_code.items()):
        closed.add_metric([str(code)], count)
    yield closed
    for name, help_text, value in (
        ("hosts_known", "Hosts registered (within max_hosts).", len(hub.hosts)),
        (
            "hosts_online",
            "Hosts online (connected, or within the grace period).",
            hub.online_count(),
        ),
        ("hosts_over_cap", "Registered hosts beyond max_hosts, not served.", stats.hosts_over_cap),
        ("limiter_addresses", "Client addresses the rate limiter tracks.", len(limiter)),
        (
            "series",
            "Host series held for /metrics (newest reading each, within max_series_per_host).",
            sum(s.series_count for s in states),
        ),
        (
            "unacked_batches",
            "Batches applied and not yet acked (waiting to be durable).",
            hub.unacked(),
        ),
    ):
        yield GaugeMetricFamily(f"fleet_metrics_agents_{name}", help_text, value=value)


def _counters(prefix: str, rows: list[tuple[str, str, float]]) -> Iterator[Metric]:
    """One unlabelled counter family per ``(name, help, value)`` row."""
    for name, help_text, value in rows:
        yield CounterMetricFamily(f"{prefix}{name}", help_text, value=value)
