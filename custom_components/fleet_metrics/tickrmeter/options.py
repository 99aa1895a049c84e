"""What a TickrMeter entry's options mean; each of them applies to a running fleet."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from ..const import (
    CONF_P95_LATENCY,
    CONF_SYMBOLS,
    CONF_TIMEOUT_RATIO,
    CONF_UPDATE_INTERVAL,
    DEFAULT_P95_LATENCY,
    DEFAULT_TICKRMETER_UPDATE_INTERVAL,
    DEFAULT_TIMEOUT_RATIO_PERCENT,
)
from ..core.sources.tickrmeter.health import Thresholds


def thresholds_from_options(options: Mapping[str, Any]) -> Thresholds:
    return Thresholds(
        timeout_ratio=options.get(CONF_TIMEOUT_RATIO, DEFAULT_TIMEOUT_RATIO_PERCENT) / 100,
        p95_seconds=options.get(CONF_P95_LATENCY, DEFAULT_P95_LATENCY),
    )


def interval_from_options(options: Mapping[str, Any]) -> timedelta:
    return timedelta(seconds=options.get(CONF_UPDATE_INTERVAL, DEFAULT_TICKRMETER_UPDATE_INTERVAL))


def symbols_from_options(options: Mapping[str, Any]) -> list[str]:
    """The symbols that get their own sensors, in the order picked, each once."""
    return list(dict.fromkeys(options.get(CONF_SYMBOLS, [])))
