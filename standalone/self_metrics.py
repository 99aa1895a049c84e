"""The runner's own health as Prometheus metrics, computed at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, get_args

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .core.exporters.circuit_breaker import State

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


def _counters(prefix: str, rows: list[tuple[str, str, float]]) -> Iterator[Metric]:
    """One unlabelled counter family per ``(name, help, value)`` row."""
    for name, help_text, value in rows:
        yield CounterMetricFamily(f"{prefix}{name}", help_text, value=value)
