"""Tasmota's FullTopic layouts: MQTT filters to subscribe and parsing of incoming topics.

Tasmota builds topics from a template (``%prefix%/%topic%/`` by default, ``%topic%/%prefix%/``
and arbitrary multi-level ones are real), so the order is never assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOKEN = re.compile(r"%(prefix|topic|hostname|id)%")


@dataclass(frozen=True, slots=True)
class TopicParts:
    prefix: str
    topic: str
    command: str


class FullTopic:
    """One FullTopic layout for a given set of prefixes."""

    def __init__(self, template: str, prefixes: tuple[str, ...] = ("stat", "tele")) -> None:
        """Raises ValueError unless %prefix% and %topic% appear once each, and every token
        fills a whole topic level (so that it can become a ``+`` in a filter)."""
        if template.count("%topic%") != 1 or template.count("%prefix%") != 1:
            raise ValueError(f"FullTopic {template!r:.120} needs %prefix% and %topic% once each")
        if "+" in template or "#" in template or "\0" in template:
            raise ValueError(f"FullTopic {template!r:.120} holds an MQTT wildcard or NUL")
        for level in template.split("/"):
            if TOKEN.search(level) and TOKEN.fullmatch(level) is None:
                raise ValueError(f"FullTopic {template!r:.120}: {level!r:.40} is not a whole level")
        self.template = template if template.endswith("/") else f"{template}/"
        self.prefixes = prefixes
        pattern = ""
        position = 0
        for match in TOKEN.finditer(self.template):
            pattern += re.escape(self.template[position : match.start()])
            token = match.group(1)
            if token == "prefix":
                pattern += "(?P<prefix>" + "|".join(re.escape(p) for p in prefixes) + ")"
            elif token == "topic":
                pattern += "(?P<topic>[^/]+)"
            else:
                pattern += "[^/]+"
            position = match.end()
        pattern += re.escape(self.template[position:]) + "(?P<command>[^/]+)"
        self._regex = re.compile(pattern)

    def filters(self) -> list[str]:
        """One MQTT filter per prefix: every other token becomes ``+``."""
        out = []
        for prefix in self.prefixes:
            filled = self.template.replace("%prefix%", prefix)
            out.append(TOKEN.sub("+", filled) + "+")
        return out

    def parse(self, topic: str) -> TopicParts | None:
        match = self._regex.fullmatch(topic)
        if match is None:
            return None
        return TopicParts(match["prefix"], match["topic"], match["command"])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FullTopic)
            and other.template == self.template
            and other.prefixes == self.prefixes
        )

    def __hash__(self) -> int:
        return hash((self.template, self.prefixes))
