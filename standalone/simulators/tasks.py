"""Stopping the tasks a simulator, ``simulate`` or ``demo`` started beside its main work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task first, then await each in the given order, so none is left pending.

    All are cancelled before any is awaited: one task's teardown never runs while another
    still works (the demo's agent leaves before the server closes). A task's cancellation
    is expected and swallowed; any other exception it ended with is raised.
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
