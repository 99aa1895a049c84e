"""Routes a topic to the handlers of every matching subscription filter.

A trie over topic levels, so routing costs one walk of the topic's levels however many
filters are registered (aiomqtt's ``Topic.matches`` tests one filter at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .topic_filter import check_filter

Handler = Callable[[str, bytes], None]


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    handlers: list[Handler] = field(default_factory=list)
    # Handlers of "<this level>/#": they also match this level itself.
    multi: list[Handler] = field(default_factory=list)


class TopicRouter:
    def __init__(self) -> None:
        self._root = _Node()
        self._filters: dict[str, int] = {}

    @property
    def filters(self) -> list[str]:
        """Distinct filters, each once however many handlers share it."""
        return list(self._filters)

    def add(self, topic_filter: str, handler: Handler) -> None:
        """Route ``topic_filter`` to ``handler``; InvalidTopicFilter (a ValueError) first."""
        node = self._root
        for level in check_filter(topic_filter).split("/"):
            if level == "#":
                node.multi.append(handler)
                break
            node = node.children.setdefault(level, _Node())
        else:
            node.handlers.append(handler)
        self._filters[topic_filter] = self._filters.get(topic_filter, 0) + 1

    def remove(self, topic_filter: str, handler: Handler) -> None:
        node = self._root
        for level in topic_filter.split("/"):
            if level == "#":
                node.multi.remove(handler)
                break
            node = node.children[level]
        else:
            node.handlers.remove(handler)
        count = self._filters[topic_filter] - 1
        if count:
            self._filters[topic_filter] = count
        else:
            del self._filters[topic_filter]

    def match(self, topic: str) -> list[Handler]:
        levels = topic.split("/")
        found: list[Handler] = []
        # Topics starting with "$" are not matched by wildcards at the first level.
        self._walk(self._root, levels, 0, found, topic.startswith("$"))
        # A handler under two overlapping filters still gets each message once.
        return list(dict.fromkeys(found)) if len(found) > 1 else found

    def _walk(
        self, node: _Node, levels: list[str], index: int, found: list[Handler], dollar: bool
    ) -> None:
        wildcards = not (dollar and index == 0)
        if wildcards:
            found.extend(node.multi)
        if index == len(levels):
            found.extend(node.handlers)
            return
        child = node.children.get(levels[index])
        if child is not None:
            self._walk(child, levels, index + 1, found, dollar)
        if wildcards and (plus := node.children.get("+")) is not None:
            self._walk(plus, levels, index + 1, found, dollar)
