"""The segments handler's plan and the segment reads, on the in-memory store."""

from __future__ import annotations

import pytest

from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.segments.agent import SegmentsHandler
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.read import users_for_attribute, users_for_item
from tests.unit.features.helpers import KEYS, T0_MS, run, settings, store_at

pytestmark = pytest.mark.asyncio


def ev(n: int, event_type: str, user: str, item: str) -> dict:
    return {
        "event_id": f"e{n}",
        "type": event_type,
        "user_id": user,
        "item_id": item,
        "timestamp": T0_MS + n,
    }


async def test_users_for_items_and_attributes_with_blacklists() -> None:
    store = store_at(T0_MS)
    catalog = [
        {"item_id": "tv", "categories": ["electronics"], "attributes": {"brand": "acme"}},
        {"item_id": "radio", "categories": ["electronics"], "attributes": {"brand": "acme"}},
    ]
    await run(CatalogHandler(KEYS), store, catalog)
    handler = SegmentsHandler(settings(), KEYS)
    events = [
        ev(1, "buy", "buyer", "tv"),
        ev(2, "click", "clicker", "tv"),
        ev(3, "click", "fan", "radio"),
        ev(4, "click", "hater", "tv"),
        ev(5, "blacklist", "hater", "tv"),
    ]
    await run(handler, store, events)
    config = segments_config(settings())
    users = await users_for_item(store, KEYS, "tv", 10, T0_MS, config)
    ids = [user["user_id"] for user in users]
    # Direct affinity first (a buy outweighs a click), then users who only share the
    # item's category and brand; whoever blacklisted it never appears.
    assert ids == ["buyer", "clicker", "fan"]
    assert users[2]["source"]["direct"] == 0.0
    assert {a["attribute"] for a in users[2]["source"]["attributes"]} == {"category", "brand"}
    brand = await users_for_attribute(store, KEYS, "brand", "acme", 10, T0_MS, config)
    weights = settings().event_weights
    assert [(u["user_id"], round(u["score"], 6)) for u in brand][0] == ("buyer", weights["buy"])
    assert {u["user_id"] for u in brand} == {"buyer", "clicker", "fan", "hater"}


async def test_segments_narrowed_to_users_with_given_attributes() -> None:
    import orjson

    from pipeline.core.ids import InvalidInput
    from pipeline.features.segments.read import parse_user_attributes, with_user_attributes
    from pipeline.store.base import Writes

    store = store_at(T0_MS)
    await run(CatalogHandler(KEYS), store, [{"item_id": "tv", "categories": ["electronics"]}])
    events = [ev(n, "click", user, "tv") for n, user in enumerate(["de-1", "fr-1", "de-2", "x"])]
    await run(SegmentsHandler(settings(), KEYS), store, events)
    records = {
        "de-1": {"country": "DE", "tags": ["gold", "runner"], "age": 42},
        "de-2": {"country": "DE", "tags": ["silver"], "vip": True},
        "fr-1": {"country": "FR", "tags": ["gold"]},
    }
    for user, attributes in records.items():
        fields = {name: orjson.dumps(value) for name, value in attributes.items()}
        await store.apply(Writes().hset(KEYS.user_attributes(user), fields))
    config = segments_config(settings())
    users = await users_for_item(store, KEYS, "tv", 10, T0_MS, config)

    async def kept(*conditions: str) -> set[str]:
        found = await with_user_attributes(
            store, KEYS, users, parse_user_attributes(conditions), 10
        )
        return {entry["user_id"] for entry in found}

    assert await kept() == {"de-1", "fr-1", "de-2", "x"}
    assert await kept("country:DE") == {"de-1", "de-2"}
    # Lists hold values; several conditions must all hold; numbers and booleans as text.
    assert await kept("tags:gold") == {"de-1", "fr-1"}
    assert await kept("country:DE", "tags:gold") == {"de-1"}
    assert await kept("age:42") == {"de-1"} and await kept("vip:true") == {"de-2"}
    assert await kept("country:IT") == set()
    for bad in ("country", ":DE", "country:", "bad name:x"):
        with pytest.raises(InvalidInput):
            parse_user_attributes([bad])
