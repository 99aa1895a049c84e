"""Readable reasons for a broker connection that failed, ended or refused a subscription.

aiomqtt reports a lost connection as ``[code:128] Unspecified error``, a CONNACK that never
came as ``Operation timed out`` and a refused port as an MqttError whose cause it suppresses
(``from None``); the exceptions it wraps say more. ``describe`` walks them and returns what a
person reading the log needs: "connection refused", "name or service not known",
"timed out after 10 s", "credentials refused".
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable, Iterator

import aiomqtt

# CONNACK codes that mean the credentials were refused: MQTT 3.1.1 (4, 5) and 5 (0x86, 0x87).
AUTH_CODES = {4, 5, 0x86, 0x87}
_CONNECTION_LOST = 0x80  # what paho reports for a socket that ended, MQTT 3.1.1 or 5
_KEEPALIVE = 0x8D


class ConnectionLost(aiomqtt.MqttError):
    """The connection ended; ``str()`` says how, readably."""


def describe(err: BaseException, timeout: float) -> str:
    """The first readable reason along ``err``'s causes; ``timeout`` is the one in force."""
    for link in _causes(err):
        reason = _reason(link, timeout)
        if reason:
            return reason
    return str(err) or type(err).__name__


def rejects_credentials(err: BaseException) -> bool:
    """Whether ``err`` is a CONNACK that refused the username or password."""
    return type(err).__name__ == "MqttConnectError" and _code(err) in AUTH_CODES


def refusal(granted: Iterable[object]) -> str | None:
    """Why a SUBACK refused the filter: 'refused: not authorized (0x87)'; None if granted.

    Codes from 0x80 up are failures: 0x80 is MQTT 3.1.1's only one, MQTT 5 has several.
    """
    for code in granted:
        value = _value(code)
        if value is not None and value >= 0x80:
            text = "failure" if isinstance(code, int) else _lower(str(code))
            return f"refused: {text} (0x{value:02x})"
    return None


def duration(seconds: float) -> str:
    """'0.4 s', '45 s', '2 min 3 s', '3 h 5 min 1 s'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes else []
    parts += [f"{secs} s"] if secs or not parts else []
    return " ".join(parts)


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and what it wraps, outermost first, each once."""
    seen: set[int] = set()
    pending = [err]
    while pending and len(seen) < 16:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending += [e for e in (link.__cause__, link.__context__) if e is not None]


def _reason(err: BaseException, timeout: float) -> str | None:
    if isinstance(err, ConnectionLost):
        return str(err)
    if isinstance(err, socket.gaierror):  # "Name or service not known"
        return _lower(err.strerror or str(err))
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        # "TLSV13_ALERT_CERTIFICATE_REQUIRED" -> "tlsv13 alert certificate required"
        return f"TLS error: {(err.reason or '').replace('_', ' ').lower() or str(err)}"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, TimeoutError) or str(err) == "Operation timed out":
        return f"timed out after {timeout:g} s"
    if isinstance(err, OSError):
        return _lower(err.strerror or str(err)) or None
    code = _code(err)
    if code is None:
        return None
    if rejects_credentials(err):
        return "credentials refused"
    rc = getattr(err, "rc", None)
    if isinstance(rc, int):  # paho's own error numbers: aiomqtt's message names them
        return _lower(str(err.args[0])) if err.args else f"error {code}"
    text = _lower(str(rc))
    if type(err).__name__ == "MqttConnectError":
        return f"refused by the broker: {text}"
    if code == _CONNECTION_LOST:
        return "connection lost"
    if code == _KEEPALIVE:
        return "no answer from the broker within the keepalive"
    return f"disconnected by the broker: {text}"


def _code(err: BaseException) -> int | None:
    return _value(getattr(err, "rc", None))


def _value(code: object) -> int | None:
    """The number of a paho ReasonCode or of a plain int code."""
    value = getattr(code, "value", code)
    return value if isinstance(value, int) else None


def _lower(text: str) -> str:
    """'Name or service not known' -> 'name or service not known'; keeps 'TLS' and 'CONNACK'."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]
