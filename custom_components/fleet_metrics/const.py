"""Constants shared by the Home Assistant glue."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "fleet_metrics"

CONF_KIND: Final = "kind"
CONF_WEBSOCKET: Final = "websocket"

KIND_OPENDTU: Final = "opendtu"

DEFAULT_OPENDTU_SCAN_INTERVAL: Final = 30
MIN_SCAN_INTERVAL: Final = 5
# Live pushes reach the entities at most this often.
LIVE_UPDATE_MIN_INTERVAL: Final = 1.0
