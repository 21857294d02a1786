"""One scenario request end to end on the in-memory store: sources, exclusions, fields, ids."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.core.decay import generation
from pipeline.core.ids import InvalidInput
from pipeline.features.catalog.read import Availability
from pipeline.features.scenarios.read import Reader, recommend
from pipeline.features.scenarios.request import parse_request
from pipeline.features.scenarios.spec import parse_scenarios
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, settings

NOW = T0_MS + 30 * 86_400_000
DAY_MS = 86_400_000


def scenario(**spec: Any) -> Any:
    return parse_scenarios({"scenarios": {"s": spec}}, "test.yaml")["s"]  # type: ignore[arg-type]


def stages(*sources: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": f"stage{i}", "sources": [source]} for i, source in enumerate(sources)]


async def catalog_store() -> MemoryStore:
    """30 items: even ones are hats, odd ones shoes/running; i0 newest, one a day older each;
    trending (clicks, 1d) ranks i0 first; user u1 clicked i3, bought i4, blacklisted i6 and
    has a for-you list of i5-i11."""
    store = MemoryStore(clock=lambda: NOW / 1000)
    writes = Writes()
    for i in range(30):
        item = f"i{i}"
        writes.hset(
            KEYS.item(item),
            {
                "item_id": item,
                "categories": orjson.dumps(["shoes/running" if i % 2 else "hats"]).decode(),
                "attributes": orjson.dumps({"brand": f"b{i % 3}"}).decode(),
                "available": "0" if i == 2 else "1",
                "price": repr(float(i)),
                "title": f"Item {i}",
                "created_at": str(NOW - i * DAY_MS),
            },
        )
        writes.zadd(KEYS.items(), {item: NOW - i * DAY_MS})
    writes.sadd(KEYS.unavailable_items(), ["i2"])
    gen = generation(NOW, 86400.0)
    writes.zadd(KEYS.trending("clicks", "1d", gen), {f"i{i}": 30.0 - i for i in range(30)})
    foryou = [
        {"item_id": f"i{i}", "score": 1.0 / i, "source": {"model": "personal", "stage": "personal"}}
        for i in range(5, 12)
    ]
    writes.set(KEYS.foryou("u1"), orjson.dumps(foryou).decode())
    history = {
        "recent": [["i3", "click", NOW - 2000], ["i4", "buy", NOW - 1000]],
        "excluded": {"i4": NOW - 1000, "i6": NOW - 5000},
        "blacklisted": ["i6"],
    }
    writes.set(KEYS.user_history("u1"), orjson.dumps(history).decode())
    await store.apply(writes)
    return store


async def serve(
    spec: dict[str, Any], query: list[tuple[str, str]], **overrides: Any
) -> dict[str, Any]:
    store = await catalog_store()
    config = settings(trending_windows={"1d": 86400.0}, **overrides)
    reader = Reader(store, KEYS, config, Availability(KEYS))
    return await recommend(reader, parse_request(scenario(**spec), query), NOW)


def served(body: dict[str, Any]) -> list[str]:
    return [item["item_id"] for item in body["items"]]


@pytest.mark.asyncio
async def test_personal_then_trending_fallback_with_the_users_exclusions() -> None:
    spec = {"stages": stages({"source": "personal"}, {"source": "trending"})}
    body = await serve(spec, [("user_id", "u1"), ("n", "10")])
    # For-you minus the blacklisted i6; then trending minus bought i4, blacklisted i6 and the
    # unavailable i2.
    assert served(body) == ["i5", "i7", "i8", "i9", "i10", "i11", "i0", "i1", "i3", "i12"]
    stages_seen = [item["source"]["stage"] for item in body["items"]]
    assert stages_seen == ["stage0"] * 6 + ["stage1"] * 4
    rid = body["recommendation_id"]
    assert rid.startswith("s:") and len(rid) == 2 + 16
    assert all(
        item["recommendation_id"] == f"{rid}:{item['source']['stage']}" for item in body["items"]
    )


@pytest.mark.asyncio
async def test_an_anonymous_request_gets_the_fallback_and_exclude_and_viewed_apply() -> None:
    spec = {"stages": stages({"source": "personal"}, {"source": "trending"})}
    anonymous = await serve(spec, [("n", "3"), ("exclude", "i0,i1")])
    assert served(anonymous) == ["i3", "i4", "i5"]
    viewed = await serve(spec, [("user_id", "u1"), ("n", "8"), ("exclude_viewed", "true")])
    assert "i3" not in served(viewed) and "i4" not in served(viewed)


@pytest.mark.asyncio
async def test_category_paths_conditions_and_fields() -> None:
    spec = {
        "params": {"max_price": {"type": "number"}},
        "filters": {"where": ["price <= $max_price"], "max_per_attribute": {"brand": 1}},
        "stages": stages({"source": "trending"}),
    }
    body = await serve(
        spec, [("category", "shoes"), ("max_price", "9"), ("fields", "title,price,categories")]
    )
    assert served(body) == ["i1", "i3", "i5"]
    first = body["items"][0]["item"]
    assert first == {"title": "Item 1", "price": 1.0, "categories": ["shoes/running"]}


@pytest.mark.asyncio
async def test_new_items_in_the_context_items_category() -> None:
    spec = {"stages": stages({"source": "new_items", "category": "context"})}
    body = await serve(spec, [("item_id", "i1"), ("n", "3")])
    # Newest shoes, without the context item itself.
    assert served(body) == ["i3", "i5", "i7"]


@pytest.mark.asyncio
async def test_related_of_the_context_items_merges_anchors() -> None:
    store = await catalog_store()
    writes = Writes()
    writes.zadd(KEYS.related("also_bought", "i1"), {"i9": 5.0, "i7": 2.0})
    writes.zadd(KEYS.related("also_bought", "i3"), {"i7": 5.0, "i1": 1.0})
    await store.apply(writes)
    reader = Reader(store, KEYS, settings(), Availability(KEYS))
    spec = {"stages": stages({"source": "related", "relation": "also_bought"})}
    body = await recommend(
        reader, parse_request(scenario(**spec), [("item_id", "i1"), ("item_id", "i3")]), NOW
    )
    assert served(body) == ["i7", "i9"]
    assert body["items"][0]["source"]["source_items"] == ["i1", "i3"]


@pytest.mark.asyncio
async def test_exploration_offers_only_new_little_seen_items() -> None:
    from pipeline.features.scenarios.read import EXPLORATION_DEPTH

    store = await catalog_store()
    await store.apply(Writes().hincr_float(KEYS.popularity("click"), {"i1": 50.0}))
    reader = Reader(store, KEYS, settings(new_item_days=3.5), Availability(KEYS))
    spec = {
        "exploration": {"share": 0.5},
        "stages": stages({"source": "editorial", "items": ["i20", "i21", "i22", "i23"]}),
    }
    body = await recommend(reader, parse_request(scenario(**spec), [("n", "4")]), NOW)
    explored = [item["item_id"] for item in body["items"] if item["source"].get("explore")]
    # i0-i3 are new; i1 is seen enough, i2 unavailable.
    assert sorted(explored) == ["i0", "i3"]
    # A creation time far ahead of now (a catalog's export time, not an age) is not new;
    # one a minute ahead (clocks differ) is.
    await store.apply(Writes().zadd(KEYS.items(), {"i0": NOW + 30 * DAY_MS, "i3": NOW + 60_000}))
    # However many items are dated far ahead, the ones in range are found.
    ahead = {f"ahead-{k}": NOW + (40 + k) * DAY_MS for k in range(EXPLORATION_DEPTH + 5)}
    await store.apply(Writes().zadd(KEYS.items(), ahead))
    body = await recommend(reader, parse_request(scenario(**spec), [("n", "4")]), NOW)
    explored = [item["item_id"] for item in body["items"] if item["source"].get("explore")]
    assert explored == ["i3"]


@pytest.mark.asyncio
async def test_promotions_take_their_share_and_are_marked() -> None:
    spec = {
        "promotions": [
            {
                "name": "hats",
                "share": 0.5,
                "categories": ["hats"],
                "sources": [{"source": "trending"}],
            }
        ],
        "stages": stages({"source": "editorial", "items": ["i1", "i3", "i5", "i7"]}),
    }
    body = await serve(spec, [("n", "4")])
    promoted = [item for item in body["items"] if item["source"].get("promoted")]
    assert [item["item_id"] for item in promoted] == ["i0", "i4"]
    assert all(item["source"]["stage"] == "hats" for item in promoted)
    assert len(body["items"]) == 4


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ([("colour", "red")], "unknown parameters"),
        ([("n", "0")], "n must be"),
        ([("n", "101")], "n must be"),
        ([("n", "1"), ("n", "2")], "n takes one value"),
        ([("user_id", "a b")], "user_id"),
        ([("exclude", "ok,bad id")], "exclude"),
        ([("fields", "secret")], "fields"),
        ([("exclude_viewed", "maybe")], "exclude_viewed"),
        ([("item_id", ",".join(f"i{i}" for i in range(21)))], "at most 20"),
    ],
)
def test_bad_requests_name_the_parameter(query: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_request(scenario(stages=stages({"source": "trending"})), query)


@pytest.mark.asyncio
async def test_a_required_parameter_must_be_sent() -> None:
    spec = {
        "params": {"max_price": {"type": "number", "required": True}},
        "stages": stages({"source": "trending"}),
    }
    with pytest.raises(InvalidInput, match="max_price"):
        await serve(spec, [])


def test_the_request_context_comes_from_context_parameters_and_a_json_object() -> None:
    request = parse_request(
        scenario(stages=stages({"source": "trending"})),
        [
            ("context", '{"page": "home", "visits": 3}'),
            ("context.device", "mobile"),
            ("context.page", "cart"),
            ("context.slot", "-2"),
        ],
    )
    assert request.request_context == {"page": "cart", "visits": 3, "device": "mobile", "slot": -2}


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ([("context", "{not json")], "context must be a JSON object"),
        ([("context", "[1]")], "context must be an object"),
        ([("context", '{"k": [1]}')], "must be a string or a number"),
        ([("context", orjson.dumps({f"k{i}": i for i in range(40)}).decode())], "at most"),
        ([("context.device", "x" * 1000)], "longer than"),
    ],
)
def test_a_bad_request_context_names_the_problem(query: list[tuple[str, str]], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_request(scenario(stages=stages({"source": "trending"})), query)


@pytest.mark.asyncio
async def test_rerank_orders_the_answer_by_the_click_model_in_the_request_context() -> None:
    from pipeline.features.ranking.config import ranking_config

    spec = {
        "rerank": "ranking",
        "stages": stages({"source": "editorial", "items": ["i0", "i1", "i3", "i4", "i5"]}),
    }
    store = await catalog_store()
    config = settings(trending_windows={"1d": 86400.0})
    model = ranking_config(config).model()
    # On mobile, this user clicks running shoes (the odd items) far more than hats.
    writes = Writes()
    writes.hset(
        KEYS.rank_weights(),
        {str(model.index("cat_device=shoes/running|mobile")): "3.0"},
    )
    await store.apply(writes)
    reader = Reader(store, KEYS, config, Availability(KEYS))

    async def ask(query: list[tuple[str, str]]) -> dict[str, Any]:
        return await recommend(reader, parse_request(scenario(**spec), query), NOW)

    on_mobile = await ask([("user_id", "u2"), ("context.device", "mobile")])
    assert served(on_mobile) == ["i1", "i3", "i5", "i0", "i4"]
    assert on_mobile["items"][0]["source"]["rerank"]["model"] == "ranking"
    assert on_mobile["items"][0]["source"]["rerank"]["score"] > 0.9
    # Another device: nothing learned for it, the editorial order stays.
    on_desktop = await ask([("user_id", "u2"), ("context.device", "desktop")])
    assert served(on_desktop) == ["i0", "i1", "i3", "i4", "i5"]
    # Anonymous requests are re-ranked by the context too.
    assert served(await ask([("context.device", "mobile")])) == ["i1", "i3", "i5", "i0", "i4"]
    # An anonymous id that logged in is ranked as the user it became (that user's weights).
    await store.apply(
        Writes()
        .hset(KEYS.rank_weights(), {str(model.index("user_item=u7|i4")): "5.0"})
        .set(KEYS.user_alias("anon-7"), "u7")
    )
    for asking in ("u7", "anon-7"):
        assert served(await ask([("user_id", asking), ("context.device", "desktop")]))[0] == "i4"
    assert served(await ask([("user_id", "anon-8"), ("context.device", "desktop")]))[0] == "i0"
