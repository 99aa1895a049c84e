"""Why a listen address cannot be listened on, in one line.

``loop.create_server`` quietly skips an address that is not local and then reports only
"could not bind on any address out of [...]"; binding the address ourselves finds the cause:
in use, not an address of this machine, a host that does not resolve, no permission.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from .core.errors import describe_error


class ListenError(Exception):
    """The address cannot be listened on; the message says why."""


def _problem(err: OSError, host: str) -> str:
    if err.errno == errno.EADDRINUSE:
        return "the address is already in use"
    if err.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    if err.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    return describe_error(err)


async def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to, like ``create_server``.

    An address that is not local is skipped when another one binds (``localhost`` on a host
    without IPv6); if none binds, ListenError gives the first reason.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ListenError(f"the host {host!r} does not resolve ({err.strerror or err})") from err
    sockets: list[socket.socket] = []
    errors: list[OSError] = []
    for family, kind, proto, _, address in dict.fromkeys(infos):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as err:
            sock.close()
            if err.errno != errno.EADDRNOTAVAIL:
                for bound in sockets:
                    bound.close()
                raise ListenError(_problem(err, host)) from err
            errors.append(err)
            continue
        sockets.append(sock)
    if not sockets:
        first = errors[0] if errors else OSError(errno.EADDRNOTAVAIL, "no address")
        raise ListenError(_problem(first, host)) from first
    return sockets


async def why_not(host: str, port: int, failure: OSError) -> str:
    """The reason ``failure`` (from a server that could not listen) happened, in words.

    Binding again by ourselves finds the precise cause; if that now succeeds, the original
    error is all there is to say.
    """
    try:
        sockets = await bind(host, port)
    except ListenError as err:
        return str(err)
    for sock in sockets:
        sock.close()
    return describe_error(failure)
