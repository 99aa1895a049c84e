"""Constants shared by the Home Assistant glue."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "fleet_metrics"

CONF_KIND: Final = "kind"
CONF_WEBSOCKET: Final = "websocket"

KIND_OPENDTU: Final = "opendtu"
KIND_TASMOTA: Final = "tasmota"

CONF_DISCOVERY_PREFIX: Final = "discovery_prefix"
CONF_EXCLUDED_DEVICES: Final = "excluded_devices"
DEFAULT_DISCOVERY_PREFIX: Final = "tasmota/discovery"

DEFAULT_OPENDTU_SCAN_INTERVAL: Final = 30
MIN_SCAN_INTERVAL: Final = 5
# Live pushes reach the entities at most this often.
LIVE_UPDATE_MIN_INTERVAL: Final = 1.0
