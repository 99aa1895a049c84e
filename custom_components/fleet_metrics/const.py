"""Constants shared by the Home Assistant glue."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "fleet_metrics"

CONF_KIND: Final = "kind"
CONF_WEBSOCKET: Final = "websocket"

# MQTT broker settings beyond host, port and credentials (the core's broker settings keys).
CONF_PROTOCOL: Final = "protocol"
CONF_TLS: Final = "tls"
CONF_CA_FILE: Final = "ca_file"
CONF_CERT_FILE: Final = "cert_file"
CONF_KEY_FILE: Final = "key_file"
CONF_TLS_INSECURE: Final = "tls_insecure"
MQTT_PROTOCOLS: Final = ("3.1.1", "5")

KIND_OPENDTU: Final = "opendtu"
KIND_TASMOTA: Final = "tasmota"

CONF_DISCOVERY_PREFIX: Final = "discovery_prefix"
CONF_EXCLUDED_DEVICES: Final = "excluded_devices"
DEFAULT_DISCOVERY_PREFIX: Final = "tasmota/discovery"

DEFAULT_OPENDTU_SCAN_INTERVAL: Final = 30
MIN_SCAN_INTERVAL: Final = 5
# Live pushes reach the entities at most this often.
LIVE_UPDATE_MIN_INTERVAL: Final = 1.0

KIND_TICKRMETER: Final = "tickrmeter"
CONF_REQUEST_TOPIC: Final = "request_topic"
CONF_STATUS_TOPIC: Final = "status_topic"
CONF_BOOT_TOPICS: Final = "boot_topics"
CONF_STREAM_TOPIC: Final = "stream_topic"
CONF_UPDATE_INTERVAL: Final = "update_interval"
CONF_SYMBOLS: Final = "symbols"
CONF_TIMEOUT_RATIO: Final = "timeout_ratio"  # percent in the UI
CONF_P95_LATENCY: Final = "p95_latency"  # seconds
# TickrMeter state is written at most this often (seconds); thousands of messages a second
# arrive in between.
DEFAULT_TICKRMETER_UPDATE_INTERVAL: Final = 5
DEFAULT_TIMEOUT_RATIO_PERCENT: Final = 10
DEFAULT_P95_LATENCY: Final = 5.0
EVENT_SYMBOL_DEGRADED: Final = "fleet_metrics_symbol_degraded"
EVENT_SYMBOL_RECOVERED: Final = "fleet_metrics_symbol_recovered"

KIND_AGENTS: Final = "agents"
SUBENTRY_HOST: Final = "host"
CONF_TOKEN_HASH: Final = "token_hash"
AGENT_PATH: Final = "/api/fleet_metrics/agent"
EVENT_HOST_ONLINE: Final = "fleet_metrics_host_online"
EVENT_HOST_OFFLINE: Final = "fleet_metrics_host_offline"
