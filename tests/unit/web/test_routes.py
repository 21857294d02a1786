"""The browser routes (pipeline.web.routes): the tracking script on the collector and the
demo page on the reader, without servers."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from pipeline.api.collector import create_collector_app
from pipeline.api.reader import create_reader_app
from pipeline.core.settings import load_settings
from pipeline.web.routes import asset, demo_api_key, script_json

CONFIG = re.compile(r'<script type="application/json" id="streamrec-demo-config">(.*?)</script>')


def collector_app(**overrides: Any) -> Any:
    # The script's route needs neither the lifespan nor a producer (never called).
    return create_collector_app(load_settings(**overrides), producer=object())


def reader_app(**overrides: Any) -> Any:
    return create_reader_app(load_settings(**overrides))


async def get(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    """GET without running the app's lifespan (these routes need no Redis nor Kafka)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test:8000") as client:
        return await client.get(path, **kwargs)


def demo_config(page: str) -> dict[str, Any]:
    found = CONFIG.search(page)
    assert found, "the demo page has no config script"
    return json.loads(found.group(1))


@pytest.mark.asyncio
async def test_sdk_is_served_as_javascript_with_a_short_cache_and_an_etag() -> None:
    app = collector_app()
    response = await get(app, "/v1/sdk.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    cache = re.fullmatch(r"public, max-age=(\d+)", response.headers["cache-control"])
    assert cache and 0 < int(cache[1]) <= 3600
    assert response.content == asset("sdk.js")
    again = await get(app, "/v1/sdk.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    stale = await get(app, "/v1/sdk.js", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == response.content


@pytest.mark.asyncio
async def test_sdk_needs_no_key_when_keys_are_enforced() -> None:
    # A <script src> sends no header: the script must stay public.
    response = await get(collector_app(write_api_keys=["w" * 32]), "/v1/sdk.js")
    assert response.status_code == 200, response.text


@pytest.mark.asyncio
async def test_demo_page_is_absent_unless_the_setting_is_on() -> None:
    response = await get(reader_app(), "/demo")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.asyncio
async def test_demo_page_carries_the_collector_url_and_a_write_key() -> None:
    app = reader_app(
        demo_page=True,
        collector_port=18001,
        read_api_keys=["r" * 32],
        write_api_keys=["w" * 32, "x" * 32],
    )
    response = await get(app, "/demo")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert demo_config(response.text) == {
        "collector": "http://127.0.0.1:18001",
        "reader": "",
        "apiKey": "w" * 32,
    }
    # The demo page itself is not part of the documented API.
    assert "/demo" not in (await get(app, "/openapi.json")).json()["paths"]


@pytest.mark.asyncio
async def test_demo_page_without_keys_sends_none_and_uses_the_browser_host_for_a_wildcard() -> None:
    response = await get(reader_app(demo_page=True, collector_host="0.0.0.0"), "/demo")
    assert demo_config(response.text) == {
        "collector": "http://shop.test:8001",
        "reader": "",
        "apiKey": None,
    }


@pytest.mark.parametrize(
    ("read", "write", "expected"),
    [([], [], None), (["r1"], [], "r1"), (["r1"], ["w1", "w2"], "w1"), ([], ["w1"], "w1")],
)
def test_the_demo_key_may_write_when_there_is_one(
    read: list[str], write: list[str], expected: str | None
) -> None:
    settings = load_settings(read_api_keys=read, write_api_keys=write)
    assert demo_api_key(settings) == expected


def test_config_json_cannot_close_the_script_element() -> None:
    text = script_json({"apiKey": "</script><script>alert(1)</script>&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"apiKey": "</script><script>alert(1)</script>&"}


def test_demo_page_inserts_data_as_text_only() -> None:
    page = asset("demo.html").decode()
    # Everything shown comes from the reader or the user: textContent, never markup.
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page
    assert "document.write" not in page
    assert page.count("__STREAMREC_DEMO_CONFIG__") == 1
