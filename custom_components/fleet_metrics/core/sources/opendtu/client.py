"""aiohttp client for the OpenDTU web API and its ``/livedata`` WebSocket."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import orjson

from .models import LiveData, NetworkInfo, SystemInfo
from .parser import PayloadError, parse_livedata, parse_network_status, parse_system_status

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_USERNAME = "admin"


class OpenDtuError(Exception):
    """Base for everything the client raises."""


class CannotConnect(OpenDtuError):
    """The DTU did not answer, or not over HTTP."""


class InvalidAuth(OpenDtuError):
    """The DTU refused the credentials (or demands some and none were given)."""


class DtuBusy(OpenDtuError):
    """HTTP 429: the DTU is short of memory and asks to come back later."""

    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"DTU busy, retry after {retry_after or 'an unknown time'} s")
        self.retry_after = retry_after


class BadResponse(OpenDtuError):
    """The DTU answered, but not with data we can use; ``kind`` is how it is counted."""

    def __init__(self, message: str, kind: str = "shape") -> None:
        super().__init__(message)
        self.kind = kind


class UnsupportedFirmware(BadResponse):
    """An API path the integration reads is missing: firmware older than November 2022 (or
    not an OpenDTU at all). Lasting until the DTU is updated, unlike a garbled answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "unsupported")


# The largest answer read (a DTU with ten inverters answers in about 30 kB).
MAX_BODY = 4 * 1024 * 1024
# The longest Retry-After honoured; a longer one would stop polling for good.
MAX_RETRY_AFTER = 3600.0


class OpenDtuClient:
    """Thin typed access to the read-only OpenDTU endpoints."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self.url = url.rstrip("/")
        # Sent as a header: aiohttp 3.14 (Home Assistant 2026.11) deprecates ``auth=``.
        self._headers = {"X-Requested-With": "XMLHttpRequest"}
        if password:
            credentials = f"{username or DEFAULT_USERNAME}:{password}".encode()
            self._headers["Authorization"] = f"Basic {base64.b64encode(credentials).decode()}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            async with self._session.get(
                f"{self.url}{path}",
                params=params,
                timeout=self._timeout,
                # X-Requested-With keeps the DTU from sending WWW-Authenticate, as its own web
                # app does.
                headers=self._headers,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                body = await _read_capped(response)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise CannotConnect(f"{self.url}{path}: {err or type(err).__name__}") from err
        if status in (401, 403):
            raise InvalidAuth(f"{path}: HTTP {status}")
        if status == 429:
            raise DtuBusy(_retry_after(retry_after))
        if status == 404:
            raise UnsupportedFirmware(f"{path}: not found (not an OpenDTU, or older firmware)")
        if len(body) > MAX_BODY:
            raise BadResponse(f"{path}: answer over {MAX_BODY} bytes", "too_large")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            raise BadResponse(f"{path}: HTTP {status}, body is not JSON", "json") from err
        if status >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise BadResponse(f"{path}: HTTP {status} {message or ''}".rstrip())
        if data is None:
            raise BadResponse(f"{path}: empty body (the DTU is out of memory)")
        return data

    async def system_status(self) -> SystemInfo:
        return _parsed(parse_system_status, await self._get_json("/api/system/status"))

    async def network_status(self) -> NetworkInfo | None:
        """None on firmware that has no such endpoint."""
        try:
            body = await self._get_json("/api/network/status")
        except BadResponse:
            return None
        return _parsed(parse_network_status, body)

    async def livedata(self, serial: str | None = None) -> LiveData:
        params = {"inv": serial} if serial else None
        return _parsed(parse_livedata, await self._get_json("/api/livedata/status", params))

    async def live_messages(self, heartbeat: float = 30.0) -> AsyncIterator[str]:
        """Raw text pushes from ``/livedata``; raises CannotConnect when it cannot open.

        Messages are yielded undecoded so the caller can count a bad one and go on.
        """
        ws_url = "ws" + self.url[len("http") :] + "/livedata"
        try:
            ws = await self._session.ws_connect(ws_url, headers=self._headers, heartbeat=heartbeat)
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (401, 403):
                raise InvalidAuth(f"/livedata: HTTP {err.status}") from err
            raise CannotConnect(f"/livedata: HTTP {err.status}") from err
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            raise CannotConnect(f"/livedata: {err or type(err).__name__}") from err
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    yield message.data
                elif message.type is aiohttp.WSMsgType.ERROR:
                    raise CannotConnect(f"/livedata: {ws.exception()}")
        finally:
            await asyncio.shield(ws.close())


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first MAX_BODY bytes and a few more when it is longer."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            break
    return b"".join(chunks)


def _retry_after(header: str | None) -> float | None:
    """Seconds from a Retry-After header; dates and nonsense give None."""
    if header and header.isascii() and header.isdigit() and len(header) <= 6:
        return min(float(header), MAX_RETRY_AFTER)
    return None


def _parsed(parse: Callable[[Any], T], body: Any) -> T:
    try:
        return parse(body)
    except PayloadError as err:
        raise BadResponse(str(err)) from err
    except Exception as err:  # the parser's safety net: a bad answer, not a crash
        raise BadResponse(f"unreadable answer: {type(err).__name__}: {err}"[:300]) from err
