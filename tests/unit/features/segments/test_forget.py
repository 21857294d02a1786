"""A ``forget`` in the segments model and agent (docs/privacy.md): the user leaves every segment
entered (affinities and blacklist markers), through the per-user index of segment keys the
agent keeps; events after the forget start anew; other users stay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.decay import expire_at_s, generation
from pipeline.features.catalog.agent import CatalogHandler
from pipeline.features.segments import state
from pipeline.features.segments.agent import SegmentsHandler
from pipeline.features.segments.config import segments_config
from pipeline.features.segments.model import (
    CATEGORY,
    Segment,
    fold,
    item_segment,
    live_generations,
    member_segment,
    segment_key,
    segment_member,
)
from pipeline.features.segments.read import users_for_attribute, users_for_item
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from tests.unit.features.helpers import KEYS, T0_MS, event, run, store_at
from tests.unit.features.helpers import settings as app_settings

CONFIG = segments_config(app_settings())
H = CONFIG.half_life_s
GEN = generation(T0_MS, H)
CATALOG_ITEMS = [
    {"item_id": "tv", "categories": ["electronics"], "attributes": {"brand": "acme"}},
    {"item_id": "radio", "categories": ["electronics"], "attributes": {"brand": "zeta"}},
]


def ev(n: int, event_type: str, user: str, item: str | None = None) -> dict:
    body = {"event_id": f"e{n}", "type": event_type, "user_id": user, "timestamp": T0_MS + n}
    if item is not None:
        body["item_id"] = item
    return body


# --- the model -------------------------------------------------------------------------------


def test_the_fold_drops_what_came_before_the_forget_and_lists_the_user():
    catalog = {"tv": (["electronics"], {})}
    deltas = fold(
        [
            event("e1", "buy", "u1", T0_MS + 1, item_id="tv"),
            event("e2", "blacklist", "u1", T0_MS + 2, item_id="radio"),
            event("e3", "forget", "u1", T0_MS + 3),
            event("e4", "click", "u1", T0_MS + 4, item_id="radio"),
            event("e5", "click", "u2", T0_MS + 1, item_id="tv"),
        ],
        CONFIG,
        catalog,
    )
    assert deltas.forgotten == {"u1"}
    # The buy and the blacklist before the forget are gone; the click after it counts.
    assert deltas.blacklisted == {}
    radio, tv = item_segment("radio"), item_segment("tv")
    for gen in (GEN, GEN + 1):
        assert set(deltas.increments[(radio, gen)]) == {"u1"}
        assert set(deltas.increments[(tv, gen)]) == {"u2"}
    # The index of the events' generation lists what each user entered.
    assert deltas.entered == {
        ("u1", GEN): {radio},
        ("u2", GEN): {tv, Segment(CATEGORY, "electronics")},
    }


def test_entered_lists_blacklist_markers_and_the_events_generation():
    later = T0_MS + 40 * 86_400_000 * 32  # forty generations of 32 half-lives of a day
    config = segments_config(app_settings(segments_half_life_s=86_400))
    deltas = fold(
        [
            event("e1", "blacklist", "u1", T0_MS, item_id="tv"),
            event("e2", "click", "u1", later, item_id="radio"),
        ],
        config,
        {"radio": ((), {"brand": "zeta"})},
    )
    assert deltas.entered == {
        ("u1", generation(T0_MS, 86_400)): {item_segment("tv")},
        ("u1", generation(later, 86_400)): {item_segment("radio"), Segment("brand", "zeta")},
    }


@pytest.mark.parametrize(
    "segment",
    [
        item_segment("tv"),
        item_segment("a:b:c"),
        Segment("brand", "acme"),
        Segment(CATEGORY, "x:y"),
    ],
)
def test_index_members_name_their_segment_unambiguously(segment: Segment):
    assert member_segment(segment_member(segment)) == segment
    assert member_segment("x:tv") is None and member_segment("a:nocolon") is None


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(10**11, 4 * 10**12), st.integers(0, 10**11), st.integers(0, 10**7))
def test_every_index_that_may_exist_is_among_the_live_generations(
    now_ms: int, age_ms: int, skew_ms: int
):
    # An event written at or before now (with a timestamp up to the skew ahead of the clock
    # that wrote it) has an index of its generation, alive until expire_at_s(gen + 1).
    event_ms = max(now_ms - age_ms, 10**11) + skew_ms
    gen = generation(event_ms, H)
    alive = live_generations(now_ms, skew_ms, H)
    if expire_at_s(gen + 1, H) > now_ms / 1000:
        assert gen in alive
    # The generation before the range has no index left: reading it would be wasted.
    assert expire_at_s(alive.start, H) <= now_ms / 1000


# --- the index (state.py) ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_index_leads_to_both_generations_and_expires_with_the_later():
    store = MemoryStore(clock=lambda: T0_MS / 1000)
    entered = {("u1", GEN): {item_segment("tv"), Segment("brand", "acme")}}
    await store.apply(state.index_writes(Writes(), KEYS, entered, H))
    assert await store.zrange(KEYS.user_segments("u1", GEN), 0, -1) == [
        (b"a:brand:acme", 0.0),
        (b"i:tv", 0.0),
    ]
    assert await store.expire_time(KEYS.user_segments("u1", GEN)) == expire_at_s(GEN + 1, H)
    listed = await state.load_entered(store, KEYS, ["u1", "nobody"], [GEN - 1, GEN])
    assert sorted(listed["u1"]) == sorted(
        segment_key(KEYS, segment, gen)
        for segment in (item_segment("tv"), Segment("brand", "acme"))
        for gen in (GEN, GEN + 1)
    )
    assert listed["nobody"] == []


# --- the agent on the in-memory store --------------------------------------------------------


async def segment_keys(store: MemoryStore) -> list[str]:
    return await store.scan("t:segment:*")


async def members(store: MemoryStore, key: str) -> set[str]:
    return {member.decode() for member, _ in await store.zrange(key, 0, -1)}


def handler_at(now_ms: int) -> SegmentsHandler:
    """A segments handler whose wall clock stands at ``now_ms``."""
    handler = SegmentsHandler(app_settings(), KEYS)
    handler.clock = lambda: now_ms / 1000
    return handler


async def indexed(store: MemoryStore, user: str) -> list[str]:
    return (await state.load_entered(store, KEYS, [user], [GEN]))[user]


async def learned(store: MemoryStore, handler: SegmentsHandler) -> None:
    await run(CatalogHandler(KEYS), store, CATALOG_ITEMS)
    await run(
        handler,
        store,
        [
            ev(1, "buy", "u1", "tv"),
            ev(2, "blacklist", "u1", "radio"),
            ev(3, "click", "u2", "tv"),
            ev(4, "click", "u2", "radio"),
        ],
    )


@pytest.mark.asyncio
async def test_a_forget_removes_the_user_from_every_segment_entered():
    store = store_at(T0_MS)
    handler = handler_at(T0_MS)
    await learned(store, handler)
    keys = await segment_keys(store)
    # tv, radio (the marker), electronics and acme, each in two generations.
    entered = [key for key in keys if "u1" in await members(store, key)]
    assert len(entered) == 8
    assert sorted(await indexed(store, "u1")) == sorted(entered)
    u2_before = {key: await store.zrange(key, 0, -1) for key in keys}

    await run(handler_at(T0_MS), store, [ev(5, "forget", "u1")])

    for key in await segment_keys(store):
        assert "u1" not in await members(store, key), key
    assert await indexed(store, "u1") == []
    assert not [key for key in await store.scan("t:*") if "u1" in key]
    # u2 is untouched, and still in every segment it was in.
    for key, rows in u2_before.items():
        assert [row for row in await store.zrange(key, 0, -1) if row[0] == b"u2"] == [
            row for row in rows if row[0] == b"u2"
        ]
    users = await users_for_item(store, KEYS, "tv", 10, T0_MS, CONFIG)
    assert [user["user_id"] for user in users] == ["u2"]
    brand = await users_for_attribute(store, KEYS, "brand", "acme", 10, T0_MS, CONFIG)
    assert [user["user_id"] for user in brand] == ["u2"]


@pytest.mark.asyncio
async def test_after_the_forget_the_user_enters_segments_anew():
    store = store_at(T0_MS)
    handler = handler_at(T0_MS)
    await learned(store, handler)
    # Batch order is not event order: the click on tv (after the forget) counts; the buy of
    # radio (before it) does not, and the earlier blacklist marker of radio is gone.
    await run(
        handler,
        store,
        [ev(9, "click", "u1", "tv"), ev(7, "buy", "u1", "radio"), ev(8, "forget", "u1")],
    )
    tv = await users_for_item(store, KEYS, "tv", 10, T0_MS, CONFIG)
    assert "u1" in [user["user_id"] for user in tv]
    radio_keys = [segment_key(KEYS, item_segment("radio"), gen) for gen in (GEN, GEN + 1)]
    for key in radio_keys:
        assert "u1" not in await members(store, key)
    assert sorted(await indexed(store, "u1")) == sorted(
        segment_key(KEYS, segment, gen)
        for segment in (
            item_segment("tv"),
            Segment(CATEGORY, "electronics"),
            Segment("brand", "acme"),
        )
        for gen in (GEN, GEN + 1)
    )
