"""Routes that serve the browser files of this package.

- :func:`install_sdk` (collector): ``GET /v1/sdk.js``, the tracking script, public (a
  ``<script>`` tag sends no key), cached briefly by browsers and revalidated by ETag.
- :func:`install_demo` (reader): ``GET /demo`` when ``settings.demo_page`` is on, the demo
  page with the collector's URL and an API key injected as JSON.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from pipeline.core.settings import Settings

JAVASCRIPT = "application/javascript; charset=utf-8"
# Short: a deployment's new script reaches browsers within minutes; the ETag spares the body.
SDK_MAX_AGE_S = 300
DEMO_CONFIG_PLACEHOLDER = "__STREAMREC_DEMO_CONFIG__"
# Addresses a server binds to but a browser cannot connect to.
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def asset(name: str) -> bytes:
    """The bytes of a file shipped in this package (``sdk.js``, ``demo.html``)."""
    return resources.files(__package__ or "pipeline.web").joinpath(name).read_bytes()


def install_sdk(app: FastAPI) -> None:
    """Serve ``GET /v1/sdk.js``; a matching ``If-None-Match`` answers 304 without a body."""
    body = asset("sdk.js")
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": f"public, max-age={SDK_MAX_AGE_S}",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }

    @app.get(
        "/v1/sdk.js",
        summary="Browser tracking script",
        description="The dependency-free JavaScript SDK (`streamrec.init`, `track`, "
        "`recommend`, `render`, `setUser`); see docs/javascript.md.",
        response_class=Response,
        responses={200: {"content": {"application/javascript": {}}}},
    )
    async def sdk(request: Request) -> Response:
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=JAVASCRIPT, headers=headers)


def collector_url(settings: Settings, request: Request) -> str:
    """The collector's base URL as the browser that asked for the demo can reach it: the
    configured host, or the host the browser used when the collector binds a wildcard."""
    host = settings.collector_host
    if host in WILDCARD_HOSTS:
        host = request.url.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{request.url.scheme}://{host}:{settings.collector_port}"


def demo_api_key(settings: Settings) -> str | None:
    """A key that may read and write (the first write key), else the first read key, else
    none (keys not enforced)."""
    keys = settings.write_api_keys or settings.read_api_keys
    return keys[0] if keys else None


def script_json(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no HTML parsing)."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def install_demo(app: FastAPI, settings: Settings) -> None:
    """Serve ``GET /demo`` when ``settings.demo_page`` is on; otherwise add nothing (404)."""
    if not settings.demo_page:
        return
    template = asset("demo.html").decode("utf-8")

    @app.get("/demo", include_in_schema=False)
    async def demo(request: Request) -> Response:
        config = {
            "collector": collector_url(settings, request),
            # The page's own origin: the reader serves it.
            "reader": "",
            "apiKey": demo_api_key(settings),
        }
        page = template.replace(DEMO_CONFIG_PLACEHOLDER, script_json(config))
        # The page carries a key: never cache it.
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})
