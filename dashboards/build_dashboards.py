"""Writes the Grafana dashboards in this folder from the panel lists below.

Run ``python dashboards/build_dashboards.py`` after changing a panel; the test suite checks
that the JSON files are what this script writes, and runs every query against a real
Prometheus scraping ``fleet-metrics demo`` (tests/ops/test_dashboards.py).

Generated rather than hand-edited because a Grafana panel is mostly boilerplate (datasource,
grid position, ids): here a panel is its title, what it shows, and its queries. Every panel
and every variable query uses the ``${datasource}`` variable, so an import asks for nothing
and works with any Prometheus datasource.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
KWH = 3_600_000  # joules


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"  # timeseries | stat | piechart | table | bargauge | state-timeline
    unit: str = "short"
    width: int = 12
    height: int = 8
    decimals: int | None = None
    thresholds: tuple[tuple[str, float | None], ...] = ()


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    query: str  # label_values(...)


@dataclass
class Dashboard:
    uid: str
    title: str
    description: str
    panels: list[Panel]
    variables: list[Variable] = field(default_factory=list)
    tags: tuple[str, ...] = ("fleet-metrics",)


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


def _target(query: Query, ref: str) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": DATASOURCE,
        "expr": query.expr,
        "refId": ref,
        "legendFormat": query.legend or "__auto",
        "range": not query.instant,
        "instant": query.instant,
    }
    if query.instant:
        target["format"] = "table"
    return target


def _options(panel: Panel) -> dict[str, Any]:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "stat":
        return {"reduceOptions": reduce, "colorMode": "value", "graphMode": "area"}
    if panel.kind == "piechart":
        return {
            "reduceOptions": reduce,
            "pieType": "donut",
            "legend": {"displayMode": "table", "placement": "right", "values": ["value"]},
        }
    if panel.kind == "bargauge":
        return {"reduceOptions": reduce, "orientation": "horizontal", "displayMode": "gradient"}
    if panel.kind == "table":
        return {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]}
    if panel.kind == "state-timeline":
        return {"showValue": "never", "mergeValues": True}
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.thresholds:
        defaults["thresholds"] = {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for color, value in panel.thresholds],
        }
    refs = "ABCDEFGH"
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": [_target(query, refs[i]) for i, query in enumerate(panel.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": _options(panel),
    }


def _variable(variable: Variable) -> dict[str, Any]:
    return {
        "name": variable.name,
        "label": variable.label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": variable.query,
        "query": {"query": variable.query, "refId": "PrometheusVariableQueryEditor"},
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def render(dashboard: Dashboard) -> dict[str, Any]:
    panels = []
    x = y = row_height = 0
    for panel_id, panel in enumerate(dashboard.panels, 1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, panel_id, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    datasource_variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "regex": "",
        "includeAll": False,
        "multi": False,
    }
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": list(dashboard.tags),
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "templating": {"list": [datasource_variable, *(_variable(v) for v in dashboard.variables)]},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["fleet-metrics"],
                "asDropdown": True,
                "title": "Fleet Metrics",
            }
        ],
        "panels": panels,
    }


OVERVIEW = Dashboard(
    uid="fleet-metrics-overview",
    title="Fleet Metrics: overview",
    description="Every source of one fleet-metrics runner: is data arriving, is anything failing.",
    panels=[
        Panel(
            "Messages per second by source",
            "Protocol messages each source handled (MQTT messages, HTTP answers, agent batches).",
            (
                q(
                    f"sum by (source) (rate(fleet_metrics_source_messages_total[{RATE}]))",
                    "{{source}}",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "Seconds since each source's last sample",
            "Grows when a source stops producing; a source that keeps restarting shows here too.",
            (q("max by (source) (fleet_metrics_source_last_sample_age_seconds)", "{{source}}"),),
            unit="s",
        ),
        Panel(
            "Rejected messages by source",
            "Malformed or unexpected payloads, counted and skipped (see the dead-letter file).",
            (
                q(
                    f"sum by (source) (increase(fleet_metrics_source_parse_errors_total[{RATE}]))",
                    "{{source}}",
                ),
            ),
            width=8,
        ),
        Panel(
            "Source restarts",
            "Restarts by the supervisor after a source failed, over the dashboard's range.",
            (
                q(
                    "sum by (source) (increase(fleet_metrics_source_restarts_total[$__range]))",
                    "{{source}}",
                    instant=True,
                ),
            ),
            kind="bargauge",
            width=8,
            thresholds=(("green", None), ("red", 1)),
        ),
        Panel(
            "MQTT brokers connected",
            "1 while the session to the broker is up.",
            (q("max by (broker) (fleet_metrics_mqtt_connected)", "{{broker}}"),),
            kind="stat",
            width=8,
            thresholds=(("red", None), ("green", 1)),
        ),
        Panel(
            "Fleet at a glance",
            "Hosts online, Tasmota devices online, TickrMeter devices online, solar power now.",
            (
                q("sum(fleet_metrics_agents_hosts_online) or vector(0)", "hosts online"),
                q("sum(tasmota_device_online) or vector(0)", "Tasmota online"),
                q("sum(tickrmeter_devices_online) or vector(0)", "TickrMeters online"),
                q("sum(opendtu_dtu_power_watts) or vector(0)", "solar W"),
            ),
            kind="stat",
            width=24,
            height=5,
        ),
        Panel(
            "Line protocol lines written per second",
            "Lines written to stdout, a file or the InfluxDB write API; pending lines wait for "
            "the next flush or a retry.",
            (
                q(f"rate(fleet_metrics_line_protocol_lines_written_total[{RATE}])", "written"),
                q("fleet_metrics_line_protocol_pending_lines", "pending"),
            ),
        ),
        Panel(
            "Line protocol failures",
            "Write errors, lines the write API refused and lines dropped from a full buffer.",
            (
                q(f"rate(fleet_metrics_line_protocol_write_errors_total[{RATE}])", "write errors"),
                q(f"rate(fleet_metrics_line_protocol_lines_rejected_total[{RATE}])", "rejected"),
                q(f"rate(fleet_metrics_line_protocol_dropped_lines_total[{RATE}])", "dropped"),
            ),
        ),
    ],
)

TICKRMETER = Dashboard(
    uid="fleet-metrics-tickrmeter",
    title="Fleet Metrics: TickrMeter",
    description="Stock-update requests and the backend's answers, per symbol; the fleet's devices.",
    variables=[
        Variable("symbol", "Symbol", "label_values(tickrmeter_stock_update_requests_total, symbol)")
    ],
    panels=[
        Panel(
            "Devices online",
            "Devices that reported within the online window, and all known devices.",
            (
                q("tickrmeter_devices_online", "online"),
                q("tickrmeter_devices_known", "known"),
            ),
            kind="stat",
            width=6,
        ),
        Panel(
            "Low battery",
            "Online devices below the low-battery level.",
            (q("tickrmeter_devices_low_battery", "low battery"),),
            kind="stat",
            width=6,
            thresholds=(("green", None), ("orange", 1)),
        ),
        Panel(
            "Firmware mix",
            "Online devices by firmware version.",
            (
                q(
                    "sum by (firmware_version) (tickrmeter_devices_by_firmware)",
                    "{{firmware_version}}",
                ),
            ),
            kind="piechart",
            width=6,
        ),
        Panel(
            "Charging",
            "Online devices by charging state.",
            (q("sum by (charging) (tickrmeter_devices_by_charging)", "{{charging}}"),),
            kind="piechart",
            width=6,
        ),
        Panel(
            "Requests and responses per second",
            "Stock-update requests the devices sent and the responses the backend sent back.",
            (
                q(
                    f'sum(rate(tickrmeter_stock_update_requests_total{{symbol=~"$symbol"}}[{RATE}]))',
                    "requests",
                ),
                q(
                    f'sum(rate(tickrmeter_stock_update_responses_total{{symbol=~"$symbol"}}[{RATE}]))',
                    "responses",
                ),
            ),
            unit="reqps",
        ),
        Panel(
            "Timeout ratio by symbol",
            "Share of requests that got no response within the timeout, per symbol.",
            (
                q(
                    f"sum by (symbol) (rate(tickrmeter_stock_update_timeout_total"
                    f'{{symbol=~"$symbol"}}[{RATE}])) / sum by (symbol) '
                    f'(rate(tickrmeter_stock_update_requests_total{{symbol=~"$symbol"}}[{RATE}]))',
                    "{{symbol}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "p95 latency by symbol",
            "95th percentile of request-to-response time, from the latency histogram.",
            (
                q(
                    "histogram_quantile(0.95, sum by (symbol, le) (rate("
                    f'tickrmeter_stock_update_latency_seconds_bucket{{symbol=~"$symbol"}}[{RATE}])))',
                    "{{symbol}}",
                ),
            ),
            unit="s",
        ),
        Panel(
            "p99 latency by symbol",
            "99th percentile of request-to-response time, as the runner computes it.",
            (q('tickrmeter_stock_update_latency_p99_seconds{symbol=~"$symbol"}', "{{symbol}}"),),
            unit="s",
        ),
        Panel(
            "Slowest symbols now",
            "The five symbols with the highest p95 latency.",
            (
                q(
                    "topk(5, tickrmeter_stock_update_latency_p95_seconds)",
                    "{{symbol}}",
                    instant=True,
                ),
            ),
            kind="bargauge",
            unit="s",
        ),
        Panel(
            "Slowest symbols ranking",
            "The runner's own ranking over its window: rank 1 is the slowest.",
            (q("tickrmeter_slowest_symbols_ranking", "{{rank}}. {{symbol}}", instant=True),),
            kind="table",
            unit="s",
        ),
        Panel(
            "Messages per second",
            "MQTT messages by kind, and malformed ones (counted and skipped).",
            (
                q(f"sum by (kind) (rate(tickrmeter_messages_received_total[{RATE}]))", "{{kind}}"),
                q(f"sum(rate(tickrmeter_messages_malformed_total[{RATE}]))", "malformed"),
            ),
            unit="reqps",
        ),
        Panel(
            "Requests waiting for a response",
            "Requests still waiting to be matched with their response.",
            (q("tickrmeter_requests_pending", "pending"),),
        ),
    ],
)

SOLAR = Dashboard(
    uid="fleet-metrics-solar",
    title="Fleet Metrics: solar (OpenDTU)",
    description="OpenDTU gateways and their inverters: power, yield, reachability.",
    variables=[Variable("dtu", "DTU", "label_values(opendtu_dtu_up, dtu)")],
    panels=[
        Panel(
            "Power now",
            "AC power of all inverters of the DTU.",
            (q('sum by (dtu) (opendtu_dtu_power_watts{dtu=~"$dtu"})', "{{dtu}}"),),
            kind="stat",
            unit="watt",
            width=8,
        ),
        Panel(
            "Yield today",
            "Energy produced today, all inverters.",
            (
                q(
                    f'sum by (dtu) (opendtu_inverter_yield_day_joules{{dtu=~"$dtu"}}) / {KWH}',
                    "{{dtu}}",
                ),
            ),
            kind="stat",
            unit="kwatth",
            decimals=2,
            width=8,
        ),
        Panel(
            "DTU reachable",
            "1 while the DTU's HTTP API answers.",
            (q('opendtu_dtu_up{dtu=~"$dtu"}', "{{dtu}}"),),
            kind="stat",
            width=8,
            thresholds=(("red", None), ("green", 1)),
        ),
        Panel(
            "AC power by inverter",
            "Each inverter's AC output.",
            (q('opendtu_inverter_power_watts{dtu=~"$dtu"}', "{{inverter}}"),),
            unit="watt",
        ),
        Panel(
            "DC power by string",
            "Each panel string's DC power.",
            (q('opendtu_string_power_watts{dtu=~"$dtu"}', "{{inverter}} {{string}}"),),
            unit="watt",
        ),
        Panel(
            "Inverter reachable and producing",
            "Reachable: the DTU hears the inverter by radio. Producing: it feeds power.",
            (
                q('opendtu_inverter_reachable{dtu=~"$dtu"}', "{{inverter}} reachable"),
                q('opendtu_inverter_producing{dtu=~"$dtu"}', "{{inverter}} producing"),
            ),
            kind="state-timeline",
        ),
        Panel(
            "Yield total by inverter",
            "Lifetime energy of each inverter.",
            (q(f'opendtu_inverter_yield_total_joules{{dtu=~"$dtu"}} / {KWH}', "{{inverter}}"),),
            kind="bargauge",
            unit="kwatth",
        ),
        Panel(
            "Inverter temperature",
            "Heat-sink temperature of each inverter.",
            (q('opendtu_inverter_temperature_celsius{dtu=~"$dtu"}', "{{inverter}}"),),
            unit="celsius",
        ),
        Panel(
            "Inverter efficiency",
            "AC out over DC in.",
            (q('opendtu_inverter_efficiency_ratio{dtu=~"$dtu"}', "{{inverter}}"),),
            unit="percentunit",
        ),
    ],
)

TASMOTA = Dashboard(
    uid="fleet-metrics-tasmota",
    title="Fleet Metrics: Tasmota energy",
    description="Tasmota plugs and meters: power, energy, supply quality and device health.",
    variables=[Variable("device", "Device", "label_values(tasmota_energy_power_watts, device)")],
    panels=[
        Panel(
            "Power now",
            "Total active power of the selected devices.",
            (q('sum(tasmota_energy_power_watts{device=~"$device"})', "total"),),
            kind="stat",
            unit="watt",
            width=8,
        ),
        Panel(
            "Energy today",
            "Energy since midnight (the device's clock), selected devices.",
            (q(f'sum(tasmota_energy_today_joules{{device=~"$device"}}) / {KWH}', "today"),),
            kind="stat",
            unit="kwatth",
            decimals=2,
            width=8,
        ),
        Panel(
            "Devices offline",
            "Devices whose last will (LWT) says Offline.",
            (q("count(tasmota_device_online == 0) or vector(0)", "offline"),),
            kind="stat",
            width=8,
            thresholds=(("green", None), ("red", 1)),
        ),
        Panel(
            "Power by device",
            "Active power of each device.",
            (q('tasmota_energy_power_watts{device=~"$device"}', "{{device}}"),),
            unit="watt",
        ),
        Panel(
            "Energy total by device",
            "Each device's energy counter since its TotalStartTime.",
            (q(f'tasmota_energy_total_joules{{device=~"$device"}} / {KWH}', "{{device}}"),),
            kind="bargauge",
            unit="kwatth",
        ),
        Panel(
            "Voltage",
            "Supply voltage at each device.",
            (q('tasmota_energy_voltage_volts{device=~"$device"}', "{{device}}"),),
            unit="volt",
        ),
        Panel(
            "Current",
            "Current through each device.",
            (q('tasmota_energy_current_amperes{device=~"$device"}', "{{device}}"),),
            unit="amp",
        ),
        Panel(
            "Online",
            "Each device's LWT: 1 online, 0 offline.",
            (q("tasmota_device_online", "{{topic}}"),),
            kind="state-timeline",
        ),
        Panel(
            "Wi-Fi signal",
            "RSSI each device reports in its STATE telemetry.",
            (q("tasmota_device_wifi_signal_dbm", "{{device}}"),),
            unit="dBm",
        ),
    ],
)

HOSTS = Dashboard(
    uid="fleet-metrics-hosts",
    title="Fleet Metrics: hosts",
    description="Hosts reporting through the Fleet Metrics agent, in node_exporter's names.",
    variables=[Variable("host", "Host", "label_values(fleet_agent_up, host)")],
    panels=[
        Panel(
            "Agent connected",
            "1 while the host's agent is connected (after the grace period, 0).",
            (q('fleet_agent_up{host=~"$host"}', "{{host}}"),),
            kind="stat",
            width=8,
            thresholds=(("red", None), ("green", 1)),
        ),
        Panel(
            "Uptime",
            "Time since the host booted.",
            (q('time() - node_boot_time_seconds{host=~"$host"}', "{{host}}"),),
            kind="stat",
            unit="s",
            width=8,
        ),
        Panel(
            "Root filesystem used",
            "Share of / in use.",
            (
                q(
                    '1 - node_filesystem_avail_bytes{host=~"$host",mountpoint="/"} '
                    '/ node_filesystem_size_bytes{host=~"$host",mountpoint="/"}',
                    "{{host}}",
                ),
            ),
            kind="bargauge",
            unit="percentunit",
            width=8,
            thresholds=(("green", None), ("orange", 0.8), ("red", 0.9)),
        ),
        Panel(
            "CPU busy",
            "Share of CPU time not idle, all CPUs.",
            (
                # Idle over all modes: right whether the agent sends one series per CPU
                # (per_cpu = true) or the host's total.
                q(
                    "1 - sum by (host) (rate(node_cpu_seconds_total"
                    f'{{host=~"$host",mode="idle"}}[{RATE}])) / '
                    f'sum by (host) (rate(node_cpu_seconds_total{{host=~"$host"}}[{RATE}]))',
                    "{{host}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Load average",
            "1, 5 and 15 minute load.",
            (
                q('node_load1{host=~"$host"}', "{{host}} 1m"),
                q('node_load5{host=~"$host"}', "{{host}} 5m"),
                q('node_load15{host=~"$host"}', "{{host}} 15m"),
            ),
        ),
        Panel(
            "Memory used",
            "Share of memory not available to new programs (MemAvailable).",
            (
                q(
                    '1 - node_memory_MemAvailable_bytes{host=~"$host"} '
                    '/ node_memory_MemTotal_bytes{host=~"$host"}',
                    "{{host}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Filesystems used",
            "Share of each filesystem in use.",
            (
                q(
                    '1 - node_filesystem_avail_bytes{host=~"$host"} '
                    '/ node_filesystem_size_bytes{host=~"$host"}',
                    "{{host}} {{mountpoint}}",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Network traffic",
            "Bytes per second received (positive) and sent (negative) by interface.",
            (
                q(
                    f'rate(node_network_receive_bytes_total{{host=~"$host"}}[{RATE}])',
                    "{{host}} {{device}} in",
                ),
                q(
                    f'-rate(node_network_transmit_bytes_total{{host=~"$host"}}[{RATE}])',
                    "{{host}} {{device}} out",
                ),
            ),
            unit="Bps",
        ),
        Panel(
            "Disk I/O",
            "Bytes per second read (positive) and written (negative) by disk.",
            (
                q(
                    f'rate(node_disk_read_bytes_total{{host=~"$host"}}[{RATE}])',
                    "{{host}} {{device}} read",
                ),
                q(
                    f'-rate(node_disk_written_bytes_total{{host=~"$host"}}[{RATE}])',
                    "{{host}} {{device}} write",
                ),
            ),
            unit="Bps",
        ),
    ],
)

DASHBOARDS = {
    "fleet-overview.json": OVERVIEW,
    "tickrmeter.json": TICKRMETER,
    "solar-opendtu.json": SOLAR,
    "tasmota-energy.json": TASMOTA,
    "hosts.json": HOSTS,
}


def text(dashboard: Dashboard) -> str:
    return json.dumps(render(dashboard), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    for name, dashboard in DASHBOARDS.items():
        (FOLDER / name).write_text(text(dashboard), encoding="utf-8")


if __name__ == "__main__":
    main()
