"""The runner's own health as Prometheus metrics, computed at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__

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
            restarts.add_metric(values, entry.restarts)
            if stats.last_sample_monotonic is not None:
                age.add_metric(values, now - stats.last_sample_monotonic)
        yield from (samples, messages, errors, restarts, age)

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
        for name, session in sorted(runner.brokers.items()):
            connected.add_metric([name], 1 if session.connected else 0)
            reconnects.add_metric([name], session.reconnects)
            received.add_metric([name], session.messages)
            handler_errors.add_metric([name], session.handler_errors)
        yield from (connected, reconnects, received, handler_errors)

        output = runner.line_protocol
        yield CounterMetricFamily(
            "fleet_metrics_line_protocol_lines_written",
            "Line protocol lines written to the output.",
            value=output.lines_written,
        )
        yield CounterMetricFamily(
            "fleet_metrics_line_protocol_dropped_lines",
            "Lines dropped because the buffer was full.",
            value=output.dropped,
        )
        yield CounterMetricFamily(
            "fleet_metrics_line_protocol_write_errors",
            "Failed writes to the line protocol output.",
            value=output.write_errors,
        )
        yield GaugeMetricFamily(
            "fleet_metrics_line_protocol_pending_lines",
            "Lines waiting for the next flush.",
            value=output.pending,
        )
        yield GaugeMetricFamily(
            "fleet_metrics_prometheus_series",
            "Series currently held for /metrics.",
            value=runner.prometheus.series_count(),
        )
