"""``n`` is never cut silently (pipeline.api.limits): above what a list route's source holds it
is a 422 naming the limit and the setting, and the OpenAPI document says so.

The reader's store points at a closed port: an ``n`` that passes validation answers 503 (a
Redis call was made), one that does not answers 422 before any Redis call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from pipeline.api.limits import count_limit
from pipeline.api.reader import create_reader_app
from pipeline.core.ids import InvalidInput
from pipeline.core.settings import load_settings
from pipeline.tools.local import free_port
from tests.unit.api.helpers import client_of

CAPS = {
    "foryou_size": 20,
    "related_max_neighbours": 30,
    "segments_max_users": 40,
    "trending_max_items": 25,
}
# (path, setting, its environment variable, the OpenAPI path)
ROUTES = [
    (
        "/v1/users/u1/recommendations",
        "foryou_size",
        "PIPELINE_FORYOU_SIZE",
        "/v1/users/{user_id}/recommendations",
    ),
    (
        "/v1/items/i1/related",
        "related_max_neighbours",
        "PIPELINE_RELATED_MAX_NEIGHBOURS",
        "/v1/items/{item_id}/related",
    ),
    (
        "/v1/items/i1/segment",
        "segments_max_users",
        "PIPELINE_SEGMENTS_MAX_USERS",
        "/v1/items/{item_id}/segment",
    ),
    (
        "/v1/segments?attribute=color&value=red",
        "segments_max_users",
        "PIPELINE_SEGMENTS_MAX_USERS",
        "/v1/segments",
    ),
    ("/v1/trending", "trending_max_items", "PIPELINE_TRENDING_MAX_ITEMS", "/v1/trending"),
]


@pytest_asyncio.fixture
async def reader() -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", **CAPS)
    async for client in client_of(create_reader_app(settings)):
        yield client


def with_n(path: str, n: int) -> str:
    return f"{path}{'&' if '?' in path else '?'}n={n}"


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "setting", "variable", "documented"), ROUTES)
async def test_n_above_what_the_source_holds_is_a_422_naming_the_setting(
    reader, path: str, setting: str, variable: str, documented: str
) -> None:
    cap = CAPS[setting]
    # At the cap: valid, so the route reaches Redis (down here: 503).
    assert (await reader.get(with_n(path, cap))).status_code == 503
    over = await reader.get(with_n(path, cap + 1))
    assert over.status_code == 422
    body = over.json()
    assert body["error"] == "invalid_parameter"
    assert f"at most {cap}" in body["detail"] and variable in body["detail"]


@pytest.mark.asyncio
@pytest.mark.parametrize(("path", "setting", "variable", "documented"), ROUTES)
async def test_openapi_documents_each_limit(
    reader, path: str, setting: str, variable: str, documented: str
) -> None:
    schema = (await reader.get("/openapi.json")).json()
    operation = schema["paths"][documented]["get"]
    n = next(p for p in operation["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == CAPS[setting]
    assert variable in n["description"]
    assert variable in operation["description"]


@pytest.mark.asyncio
async def test_the_default_n_stays_within_a_small_list() -> None:
    settings = load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", foryou_size=5)
    async for client in client_of(create_reader_app(settings)):
        # The default (10) would exceed 5: it becomes 5, so a request without n is valid.
        assert (await client.get("/v1/users/u1/recommendations")).status_code == 503
        assert (await client.get("/v1/users/u1/recommendations?n=6")).status_code == 422


def test_the_route_maximum_binds_when_the_setting_holds_more() -> None:
    limit = count_limit(
        load_settings(trending_max_items=5000), "trending_max_items", 500, 10, "items", "{cap}"
    )
    assert (limit.cap, limit.setting) == (500, None)
    assert limit.check(500) == 500
    with pytest.raises(InvalidInput, match="at most 500, the most this route returns"):
        limit.check(501)


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/v1/segments?attribute=color&value=red", "/v1/items/tv/segment"])
async def test_a_malformed_user_attribute_condition_is_a_4xx_naming_it(reader, path: str) -> None:
    response = await reader.get(f"{path}{'&' if '?' in path else '?'}user_attribute=country")
    assert 400 <= response.status_code < 500
    assert "user_attribute" in response.json()["detail"]
