"""What every source is: a long-running coroutine that emits samples, with counters."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .rejects import Rejects, RejectSink
from .sample import Sample

if TYPE_CHECKING:
    from .mqtt.session import BrokerSession

Emit = Callable[[Sample], None]


@dataclass(slots=True)
class SourceContext:
    """What the runner shares between sources: one session per configured broker, and where
    rejected messages go (the dead-letter file)."""

    brokers: Mapping[str, BrokerSession] = field(default_factory=dict)
    on_rejected: RejectSink | None = None

    def broker(self, name: str) -> BrokerSession:
        try:
            return self.brokers[name]
        except KeyError:
            raise LookupError(f"no broker named {name!r} is configured") from None


@dataclass(slots=True)
class SourceStats:
    """Counters every source keeps; the runner exports them as self-metrics."""

    messages: int = 0
    samples: int = 0
    parse_errors: int = 0
    last_sample_monotonic: float | None = None

    def emitted(self, count: int = 1) -> None:
        self.samples += count
        self.last_sample_monotonic = time.monotonic()


class Source(ABC):
    """A source runs until cancelled; an exception it raises makes the supervisor restart it.

    ``HELP`` maps the metric names it produces to their description.
    """

    kind: ClassVar[str]
    HELP: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self, name: str, config: Mapping[str, Any], context: SourceContext | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.context = context or SourceContext()
        self.stats = SourceStats()
        self.rejects = Rejects(name, self.context.on_rejected)

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Produce samples forever; return only if there is nothing more to do."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``run`` opened; called after it was cancelled or raised."""
