"""One POST of line protocol to an InfluxDB-compatible write API, and what its answer means.

The answer decides the fate of the chunk, so it is classified here and nowhere else:
- 2xx: written.
- 413: too large; the caller splits the chunk.
- 400 with "partial write": InfluxDB wrote the good lines and names the bad ones (1.x quotes
  them: ``unable to parse '<line>': ...``; 2.x numbers them: ``line 3: ...``). The good
  ones must not be sent again.
- 5xx, 408, 429, timeouts and connection errors: the endpoint's trouble, not the lines';
  retry later. So are 401, 403 and 404: a wrong token or a database not created yet is fixed
  on the server without touching the lines, and dropping every line meanwhile would fill the
  dead-letter file with good data.
- any other 4xx: the lines are refused; the caller drops and dead-letters them.

Credentials: InfluxDB 2.x and 3.x take ``Authorization: Token <token>`` (``token``); 1.x
takes HTTP basic auth (``username``/``password``, or ``user:password@`` in the URL) or the
``u``/``p`` query parameters. ``db``/``rp`` (1.x) and ``org``/``bucket`` (2.x) stay in the URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import orjson

Verdict = Literal["written", "too_large", "partial", "rejected", "retry"]

RETRY_STATUSES = frozenset({401, 403, 404, 408, 429})
REASON_LIMIT = 500
_V2_LINE = re.compile(r"\bline (\d+):")
_V1_DROPPED = re.compile(r"\bdropped=(\d+)")
# Query parameters that locate the data; everything else (u, p, token...) may be a secret.
_SAFE_PARAMS = frozenset({"db", "rp", "precision", "bucket", "org", "orgID", "consistency"})


@dataclass(slots=True)
class Answer:
    verdict: Verdict
    status: int = 0
    reason: str = ""
    # partial: indexes of the refused lines in the chunk, and refused lines InfluxDB only
    # counted (``dropped=N``: type conflicts and the like, not named line by line).
    bad_lines: set[int] = field(default_factory=set)
    unnamed_dropped: int = 0


def public_url(url: str) -> str:
    """The URL without user, password or any query parameter that may hold a secret."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k in _SAFE_PARAMS])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def server_reason(body: bytes) -> str:
    """The error text of an InfluxDB answer (1.x ``error``, 2.x ``message``) or the body."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("error", "message"):
            if isinstance(parsed.get(key), str):
                return str(parsed[key])
    return body.decode(errors="replace").strip()


def refused_lines(reason: str, lines: list[str]) -> tuple[set[int], int]:
    """Which lines of the chunk a partial-write answer names, and how many it only counts."""
    named = {int(number) - 1 for number in _V2_LINE.findall(reason)}
    named = {index for index in named if 0 <= index < len(lines)}
    if not named and "unable to parse '" in reason:
        named = {i for i, line in enumerate(lines) if f"unable to parse '{line}'" in reason}
    dropped = _V1_DROPPED.search(reason)
    return named, int(dropped.group(1)) if dropped else 0


def classify(status: int, body: bytes, lines: list[str]) -> Answer:
    if 200 <= status < 300:
        return Answer("written", status)
    reason = server_reason(body)
    if status == 413:
        return Answer("too_large", status, reason[:REASON_LIMIT])
    if status >= 500 or status in RETRY_STATUSES or status < 400:
        return Answer("retry", status, reason[:REASON_LIMIT])
    if status == 400 and "partial write" in reason:
        named, unnamed = refused_lines(reason, lines)
        return Answer("partial", status, reason[:REASON_LIMIT], named, unnamed)
    return Answer("rejected", status, reason[:REASON_LIMIT])


class HttpWriter:
    """POSTs chunks; owns the aiohttp session so that ``close`` leaves none behind."""

    def __init__(
        self,
        url: str,
        token: str = "",
        timeout: float = 10.0,
        username: str = "",
        password: str = "",
    ) -> None:
        self.url = url
        self.public_url = public_url(url)
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        # aiohttp takes user:password@ from the URL itself, and refuses both at once.
        self._auth = aiohttp.BasicAuth(username, password) if username else None
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def post(self, lines: list[str], seconds: float | None = None) -> Answer:
        """One chunk; connection errors and timeouts are an ``Answer("retry")`` too."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = ("\n".join(lines) + "\n").encode(errors="replace")
        limit = aiohttp.ClientTimeout(
            total=self.timeout if seconds is None else min(seconds, self.timeout)
        )
        try:
            async with self._session.post(
                self.url, data=body, headers=self._headers, auth=self._auth, timeout=limit
            ) as response:
                answer = await response.read()
                return classify(response.status, answer, lines)
        except TimeoutError:
            return Answer("retry", reason=f"timed out after {limit.total:g} s")
        except aiohttp.ClientError as err:
            return Answer("retry", reason=f"{type(err).__name__}: {err}"[:REASON_LIMIT])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
