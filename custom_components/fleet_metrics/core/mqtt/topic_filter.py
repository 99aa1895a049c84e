"""Checks a subscription filter before it reaches the broker.

A broker does not refuse a malformed filter politely: Mosquitto drops the connection of a
client that subscribes to ``a/#/b``, to a string that is not valid MQTT UTF-8 (NUL, other
control characters, noncharacters) or to a filter more than 200 levels deep, and that
connection is shared by every source on the broker. So each filter is checked here, and a
bad one fails the source that asked for it, alone, with a ValueError that says why.
"""

from __future__ import annotations

import re
import unicodedata

MAX_BYTES = 65_535  # a two-byte length prefix
MAX_SEPARATORS = 200  # Mosquitto's topic hierarchy limit: one more and it disconnects

# MQTT strings must not hold U+0000 and should not hold the C0/C1 controls or noncharacters;
# Mosquitto treats all of them as malformed UTF-8.
_NONCHARACTERS = "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\ufdd0-\ufdef{_NONCHARACTERS}]")


class InvalidTopicFilter(ValueError):
    """A filter no broker should be sent."""


def check_filter(topic_filter: str) -> str:
    """``topic_filter`` unchanged, or InvalidTopicFilter naming what is wrong with it."""
    reason = _problem(topic_filter)
    if reason:
        shown = repr(topic_filter[:60]) + ("..." if len(topic_filter) > 60 else "")
        raise InvalidTopicFilter(f"invalid MQTT topic filter {shown}: {reason}")
    return topic_filter


def _problem(topic_filter: str) -> str | None:
    if not isinstance(topic_filter, str):
        return f"a filter is text, not {type(topic_filter).__name__}"
    if not topic_filter:
        return "it is empty"
    try:
        size = len(topic_filter.encode("utf-8"))
    except UnicodeEncodeError as err:
        return f"it cannot be encoded as UTF-8 (lone surrogate at index {err.start})"
    if size > MAX_BYTES:
        return f"it is {size:,} bytes long; MQTT allows {MAX_BYTES:,}"
    if match := _FORBIDDEN.search(topic_filter):
        char = match.group()
        name = unicodedata.name(char, "control character" if ord(char) < 0xA0 else "noncharacter")
        return f"it contains U+{ord(char):04X} ({name}) at index {match.start()}"
    levels = topic_filter.split("/")
    if len(levels) > MAX_SEPARATORS + 1:
        return f"it has {len(levels):,} levels; brokers accept {MAX_SEPARATORS + 1}"
    for index, level in enumerate(levels):
        if ("#" in level and level != "#") or ("+" in level and level != "+"):
            return f"'+' and '#' must fill a whole level, not {level[:40]!r}"
        if level == "#" and index != len(levels) - 1:
            return "'#' must be the last level"
    if levels[0] == "$share":
        return (
            "shared subscriptions ($share/...) are not supported: their messages arrive "
            "under the plain topic, which the filter does not route"
        )
    return None
