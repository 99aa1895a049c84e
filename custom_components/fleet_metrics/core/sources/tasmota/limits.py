"""How much of a Tasmota fleet the tracker keeps, and which names may become tags.

Every map the tracker holds is keyed by what arrives over the wire (topics, MACs, sensor and
field names, FullTopics from discovery), so a broken or hostile publisher could otherwise
make it grow without end. Names are checked before they become tags or fields; maps are
capped, and what a cap pushes out is the least recently seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Tasmota's own settings are shorter (Topic 32, DeviceName 32, sensor names about 16
# characters); 64 leaves room for scripts and SML meters that name their own values.
MAX_NAME = 64
MAX_FULL_TOPIC = 100  # Tasmota's FullTopic setting holds 100 characters
MAX_PREFIX = 10  # and each of its three prefixes 10
MAX_RELAY = 32  # POWER1..POWER32, Tasmota's most on ESP32
MAX_DEPTH = 3  # sensor, sensor inside ENERGY (BL09XX), one level more to spare

_MAC = re.compile(r"[0-9A-F]{12}")
_WILDCARDS = frozenset("+#/")


# A home fleet is tens to a few hundred devices, a big one a few thousand.
DEFAULT_DEVICES = 5000
# Layouts are never forgotten (each holds broker subscriptions), so beyond the cap a
# FullTopic from discovery is refused rather than pushing out one in use.
DEFAULT_LAYOUTS = 8
DEFAULT_READINGS = 64  # per device: sensors, phases, switches
DEFAULT_FIELDS = 64  # per reading


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps of one tracker; the runner reads them from the source's config."""

    devices: int = DEFAULT_DEVICES
    layouts: int = DEFAULT_LAYOUTS
    readings: int = DEFAULT_READINGS
    fields: int = DEFAULT_FIELDS


def valid_name(text: str, max_length: int = MAX_NAME) -> bool:
    """Short and printable: no control characters, line breaks or NUL."""
    return 0 < len(text) <= max_length and text.isprintable()


def valid_topic_level(text: str, max_length: int = MAX_NAME) -> bool:
    """One MQTT topic level that is no wildcard: usable as a tag and in a filter."""
    return valid_name(text, max_length) and _WILDCARDS.isdisjoint(text)


def normal_mac(text: str) -> str | None:
    """``2c:f4:32:cc:2f:c5`` -> ``2CF432CC2FC5``; None for anything that is not a MAC."""
    mac = text.upper().replace(":", "")
    return mac if _MAC.fullmatch(mac) else None
