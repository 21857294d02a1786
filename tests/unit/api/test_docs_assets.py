"""``/docs`` of both services loads Swagger UI from the service itself (pipeline.api.docs):
every URL the page references is local and answers, so the page works offline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pipeline.api.collector import create_collector_app
from pipeline.api.reader import create_reader_app
from pipeline.core.settings import load_settings
from pipeline.tools.local import free_port
from tests.unit.api.helpers import client_of
from tests.unit.api.test_collector import TOPICS_FILE, ListProducer

# src="...", href="...", and the url: '...' Swagger UI loads the OpenAPI document from.
REFERENCE = re.compile(r"""(?:src|href)="([^"]+)"|url:\s*'([^']+)'""")


@pytest_asyncio.fixture(params=["reader", "collector"])
async def service(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    # Keys on: the page and its files must load without one.
    settings = load_settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        topics_file=TOPICS_FILE,
        read_api_keys=["read-key-0123456789abcdef"],
        write_api_keys=["write-key-0123456789abcdef"],
    )
    if request.param == "reader":
        app = create_reader_app(settings)
    else:
        app = create_collector_app(settings, producer=ListProducer())
    async for client in client_of(app):
        yield client


@pytest.mark.asyncio
async def test_docs_reference_only_local_urls_that_answer(service) -> None:
    page = await service.get("/docs")
    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    urls = [src or url for src, url in REFERENCE.findall(page.text)]
    assert len(urls) >= 4, urls  # stylesheet, icon, script, OpenAPI document
    remote = [url for url in urls if not url.startswith("/") or url.startswith("//")]
    assert not remote, f"/docs loads {remote} from elsewhere"
    for url in urls:
        response = await service.get(url)
        assert response.status_code == 200, url
        assert response.content, url
    script = await service.get(next(url for url in urls if url.endswith(".js")))
    assert "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000  # the real bundle, not a stub
    stylesheet = await service.get(next(url for url in urls if url.endswith(".css")))
    assert stylesheet.headers["content-type"].startswith("text/css")


@pytest.mark.asyncio
async def test_redoc_is_not_served_from_a_cdn(service) -> None:
    # FastAPI's default /redoc page loads its script from a CDN: it is turned off.
    assert (await service.get("/redoc")).status_code in (401, 404)
