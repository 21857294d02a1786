"""The scenario engine: stages fill in order, sources blend, reserved shares, caps, and no
filter combination ever lets an excluded item through."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.features.catalog.model import CatalogView
from pipeline.features.scenarios.engine import (
    Candidate,
    ReservedInput,
    SourceList,
    StageInput,
    assemble,
    blend,
    rerank,
    reserved_slots,
    spread,
)
from pipeline.features.scenarios.filters import BoundCondition, Diversity, Filter


def ranked(*items: str, model: str = "m") -> SourceList:
    return SourceList(
        1.0, [Candidate(item, 10.0 - i, {"model": model}) for i, item in enumerate(items)]
    )


def stage(name: str, *sources: SourceList) -> StageInput:
    return StageInput(name, sources)


def ids(items: list[dict]) -> list[str]:
    return [item["item_id"] for item in items]


def test_lower_stages_fill_only_what_upper_ones_could_not() -> None:
    stages = [stage("first", ranked("a", "b")), stage("second", ranked("b", "c", "d", "e"))]
    items = assemble(stages, [], {}, Filter(), Diversity(), 4)
    assert ids(items) == ["a", "b", "c", "d"]
    assert [item["source"]["stage"] for item in items] == ["first", "first", "second", "second"]
    # A full first stage leaves nothing to the second.
    full = assemble(stages, [], {}, Filter(), Diversity(), 2)
    assert [item["source"]["stage"] for item in full] == ["first", "first"]


def test_a_list_is_short_only_when_no_stage_has_more() -> None:
    items = assemble([stage("s", ranked("a", "b"))], [], {}, Filter(), Diversity(), 10)
    assert ids(items) == ["a", "b"]


def test_sources_are_scaled_weighted_and_summed() -> None:
    strong = SourceList(
        2.0, [Candidate("a", 100.0, {"model": "x"}), Candidate("b", 50.0, {"model": "x"})]
    )
    weak = SourceList(
        1.0, [Candidate("b", 1.0, {"model": "y"}), Candidate("c", 0.5, {"model": "y"})]
    )
    merged = blend(stage("s", strong, weak))
    scores = {c.item_id: c.score for c in merged}
    assert scores == {"a": 2.0, "b": 2.0, "c": 0.5}
    # Ties keep first-seen order; the source named is the one that gave the largest part.
    assert [c.item_id for c in merged] == ["a", "b", "c"]
    assert next(c for c in merged if c.item_id == "b").source["model"] == "x"


def test_filters_and_diversity_apply_to_every_stage() -> None:
    views = {
        "a": CatalogView(categories=("x",)),
        "b": CatalogView(categories=("x",)),
        "c": CatalogView(categories=("y",), available=False),
        "d": CatalogView(categories=("y",)),
    }
    stages = [stage("one", ranked("a", "b")), stage("two", ranked("c", "d", "gone"))]
    rule = Filter(excluded=frozenset({"gone"}))
    items = assemble(stages, [], views, rule, Diversity(per_category=1), 10)
    assert ids(items) == ["a", "d"]


def test_reserved_slots_are_filled_first_and_spread() -> None:
    views = {f"p{i}": CatalogView(attributes={"sale": True}) for i in range(5)}
    promoted = ReservedInput(
        "sale",
        "promoted",
        reserved_slots(0.2, 10),
        Filter(conditions=(BoundCondition("sale", "==", True),)),
        [ranked("r0", "p0", "p1", "p2")],
    )
    regular = [stage("main", ranked(*[f"r{i}" for i in range(20)]))]
    items = assemble(regular, [promoted], views, Filter(), Diversity(), 10)
    assert len(items) == 10
    marked = [i for i, item in enumerate(items) if item["source"].get("promoted")]
    assert [items[i]["item_id"] for i in marked] == ["p0", "p1"]
    assert all(items[i]["source"]["stage"] == "sale" for i in marked)
    # Spread: not both at the top.
    assert marked == [2, 7]


def test_unfilled_reserved_slots_go_to_the_stages() -> None:
    explore = ReservedInput("exploration", "explore", 3, Filter(), [ranked("new1")])
    items = assemble(
        [stage("main", ranked("a", "b", "c", "d", "e"))], [explore], {}, Filter(), Diversity(), 5
    )
    assert sorted(ids(items)) == ["a", "b", "c", "d", "new1"]
    assert [item["source"].get("explore") for item in items].count(True) == 1


def test_shares_round_half_up() -> None:
    assert reserved_slots(0.1, 10) == 1
    assert reserved_slots(0.1, 5) == 1
    assert reserved_slots(0.1, 4) == 0
    assert reserved_slots(1.0, 3) == 3


def test_spread_places_extras_evenly() -> None:
    def c(name: str) -> Candidate:
        return Candidate(name, 1.0, {})

    out = spread([c("a"), c("b"), c("c")], [c("x")], 4)
    assert [x.item_id for x in out] == ["a", "b", "x", "c"]
    assert [x.item_id for x in spread([], [c("x"), c("y")], 5)] == ["x", "y"]


ITEMS = [f"i{i}" for i in range(12)]
CATEGORIES = ["a", "a/b", "c"]
view_strategy = st.builds(
    CatalogView,
    categories=st.lists(st.sampled_from(CATEGORIES), max_size=2).map(tuple),
    attributes=st.fixed_dictionaries({"brand": st.sampled_from(["x", "y"])}),
    available=st.booleans(),
    price=st.one_of(st.none(), st.floats(0, 100)),
)
source_strategy = st.lists(st.sampled_from(ITEMS), max_size=8, unique=True).map(
    lambda xs: ranked(*xs)
)


@settings(max_examples=300, deadline=None)
@given(
    views=st.dictionaries(st.sampled_from(ITEMS), view_strategy),
    stages=st.lists(st.lists(source_strategy, min_size=1, max_size=2), min_size=1, max_size=3),
    reserved_sources=st.lists(source_strategy, max_size=2),
    excluded=st.frozensets(st.sampled_from(ITEMS)),
    include=st.lists(st.sampled_from(CATEGORIES), max_size=2).map(tuple),
    exclude_categories=st.lists(st.sampled_from(CATEGORIES), max_size=1).map(tuple),
    max_price=st.one_of(st.none(), st.floats(0, 100)),
    per_category=st.integers(0, 2),
    share=st.floats(0.0, 0.5),
    n=st.integers(1, 12),
)
def test_no_combination_of_filters_lets_an_excluded_item_through(
    views: dict,
    stages: list,
    reserved_sources: list,
    excluded: frozenset,
    include: tuple,
    exclude_categories: tuple,
    max_price: float | None,
    per_category: int,
    share: float,
    n: int,
) -> None:
    conditions = () if max_price is None else (BoundCondition("price", "<=", max_price),)
    rule = Filter(excluded, True, include, exclude_categories, conditions)
    promoted = Filter(
        excluded,
        True,
        include,
        exclude_categories,
        conditions + (BoundCondition("brand", "==", "x"),),
    )
    reserved = [
        ReservedInput("promo", "promoted", reserved_slots(share, n), promoted, reserved_sources)
    ]
    stage_inputs = [StageInput(f"s{i}", sources) for i, sources in enumerate(stages)]
    items = assemble(stage_inputs, reserved, views, rule, Diversity(per_category=per_category), n)
    served = ids(items)
    assert len(served) == len(set(served)) <= n
    unknown = CatalogView()
    for item in items:
        view = views.get(item["item_id"], unknown)
        assert rule.admits(item["item_id"], view), item
        if item["source"].get("promoted"):
            assert promoted.admits(item["item_id"], view)
    if per_category:
        for category in CATEGORIES:
            holding = [i for i in served if category in views.get(i, unknown).categories]
            assert len(holding) <= per_category


def test_rerank_orders_regular_items_by_score_and_keeps_reserved_places() -> None:
    views = {f"p{i}": CatalogView(attributes={"sale": True}) for i in range(5)}
    promoted = ReservedInput(
        "sale",
        "promoted",
        reserved_slots(0.2, 10),
        Filter(conditions=(BoundCondition("sale", "==", True),)),
        [ranked("p0", "p1")],
    )
    regular = [stage("main", ranked(*[f"r{i}" for i in range(20)]))]
    items = assemble(regular, [promoted], views, Filter(), Diversity(), 10)
    scores = {f"r{i}": i / 100 for i in range(20)}  # the click model prefers later items
    scores["r3"] = 0.5
    out = rerank(items, scores)
    assert [i for i, item in enumerate(out) if item["source"].get("promoted")] == [2, 7]
    regular_ids = [item["item_id"] for item in out if not item["source"].get("promoted")]
    assert regular_ids == ["r3", "r7", "r6", "r5", "r4", "r2", "r1", "r0"]
    assert out[0]["source"]["rerank"] == {"model": "ranking", "score": 0.5}
    assert out[0]["source"]["stage"] == "main"
    # The input is not changed; unscored items keep their order, after the scored ones.
    assert "rerank" not in items[0]["source"]
    partial = rerank(items, {"r5": 0.9})
    assert [item["item_id"] for item in partial if not item["source"].get("promoted")] == [
        "r5",
        "r0",
        "r1",
        "r2",
        "r3",
        "r4",
        "r6",
        "r7",
    ]
    assert rerank([], {}) == []
