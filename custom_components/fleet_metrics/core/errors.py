"""One readable line for an exception, for logs and error messages.

Many exceptions say nothing by themselves: ``TimeoutError()`` prints as an empty string, a
``CancelledError`` or ``ConnectionResetError`` raised deep in a library often has no text.
"""

from __future__ import annotations

import socket


def describe_error(err: BaseException, timeout: float | None = None) -> str:
    """``err`` as one line: "timed out after 10 s" for a timeout, the class name when the
    exception has no message, and never a line break."""
    if isinstance(err, TimeoutError) and not _own_text(err):
        return f"timed out after {timeout:g} s" if timeout is not None else "timed out"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the host name ({err.strerror or err})"
    text = _own_text(err)
    if not text:
        return type(err).__name__
    return " ".join(text.split())


def _own_text(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror}{where}"
    return str(err)
