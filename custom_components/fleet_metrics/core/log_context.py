"""Which source or broker a log line is about, without every log call saying so.

The supervisor runs each source in a task whose context names the source, and the runner runs
each broker session in a context naming the broker; tasks they create inherit it. A log
formatter (the runner's JSON logs) reads ``current()``. A call can also name them itself with
``extra={"source": ...}`` or ``extra={"broker": ...}``, which wins over the context.
"""

from __future__ import annotations

import contextvars

SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fleet_metrics_source", default=None
)
BROKER: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fleet_metrics_broker", default=None
)

# The log settings the runner and the agent accept (config keys and command line alike).
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")


def current() -> dict[str, str]:
    """The source and broker of the running task, where known."""
    found: dict[str, str] = {}
    if (source := SOURCE.get()) is not None:
        found["source"] = source
    if (broker := BROKER.get()) is not None:
        found["broker"] = broker
    return found


def context_for(source: str | None = None, broker: str | None = None) -> contextvars.Context:
    """A copy of the current context naming ``source`` and/or ``broker``, for
    ``asyncio.create_task(..., context=...)``."""
    context = contextvars.copy_context()
    if source is not None:
        context.run(SOURCE.set, source)
    if broker is not None:
        context.run(BROKER.set, broker)
    return context
