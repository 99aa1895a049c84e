"""``/metrics`` and ``/healthz`` on one aiohttp application."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

RENDER_KEY = web.AppKey("render", Callable[[], bytes])


async def _metrics(request: web.Request) -> web.Response:
    body = request.app[RENDER_KEY]()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app(render: Callable[[], bytes]) -> web.Application:
    """``render`` returns the whole text exposition."""
    app = web.Application()
    app[RENDER_KEY] = render
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    return app
