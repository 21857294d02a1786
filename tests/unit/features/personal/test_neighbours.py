"""The neighbour index: the co-occurrence lists as scored (in the factor model's indexes) and
the popularity vectors stay equal to the counts, however the counts were built
(incrementally, or loaded by a restarted worker), and the counts are the rule over the pairs
the engine made."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest

from pipeline.core.events import event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.features.related.model import DISCOUNT_BY, RELATIONS, Pair, blend_related, trim
from tests.unit.features.helpers import count_pair

T0 = 1_767_225_600_000


def click(n: int, user: str, item: str, event_type: str = "click") -> object:
    return event_from_dict(
        {
            "event_id": f"e{n}",
            "type": event_type,
            "user_id": user,
            "item_id": item,
            "timestamp": T0 + n * 1000,
        }
    )


def mirrored(engine: Engine, relation: str, anchor: str) -> dict[str, float]:
    """An anchor's partner list as partner id -> count ({} when it has none)."""
    found = engine.neighbours.partners(relation, anchor)
    if found is None:
        return {}
    indexes, counts = found
    ids = [engine.model.item_ids[i] for i in indexes.tolist()]
    assert len(set(ids)) == len(ids)  # each partner once
    return dict(zip(ids, counts.tolist(), strict=True))


def assert_mirrors_counts(engine: Engine) -> None:
    index = engine.neighbours
    ids = engine.model.item_ids
    for signal in ("click", "conversion"):
        vector = index.popularity_vector(signal)
        counts = engine.cooc.popularity[signal]
        assert [vector[i] for i in range(len(ids))] == [counts.get(item, 0.0) for item in ids]
        # What a partner's count is divided by: Python's power of each count, as the rule.
        discount = index.discount_vector(signal)
        assert [discount[i] for i in range(len(ids))] == [
            (counts.get(item, 0.0) + 1.0) ** index.discount for item in ids
        ]
    for relation in RELATIONS:
        for anchor, counts in engine.cooc.counts()[relation].items():
            assert mirrored(engine, relation, anchor) == {
                p: c for p, c in counts.items() if p in engine.model.item_index
            }


def test_popularity_of_items_that_join_the_model_after_their_first_count() -> None:
    """A new item's first click is counted before the item joins the factor model; its entry
    in the (pre-grown) popularity vector must still hold that count."""
    engine = Engine(personal_config(load_settings()))
    for n in range(1, 6):
        engine.learn(click(n, "u1", f"i{n}"))
    engine.recommend("u1", 5)  # grows the vectors beyond the items known so far
    engine.learn(click(10, "u2", "brand-new"))
    engine.learn(click(11, "u2", "brand-new", "buy"))
    assert_mirrors_counts(engine)


def test_counts_read_from_the_store_replace_the_vectors_entries() -> None:
    """Another worker's counts, read again for a batch's items, replace the entries of the
    items already in the vectors; items not in the model yet get theirs when they join."""
    engine = Engine(personal_config(load_settings()))
    for n in range(1, 6):
        engine.learn(click(n, "u1", f"i{n}", "buy"))
    engine.recommend("u1", 5)  # the vectors now hold i1..i5
    engine.neighbours.load_popularity("conversion", {"i2": 40.0, "later": 7.0})
    engine.neighbours.load_popularity("click", {"i3": 12.0})
    assert engine.neighbours.popularity_vector("conversion")[engine.model.item_index["i2"]] == 40
    engine.learn(click(10, "u2", "later"))
    assert_mirrors_counts(engine)


def test_partner_arrays_follow_the_counts_as_pairs_arrive() -> None:
    engine = Engine(personal_config(load_settings()))
    n = 0
    for round_ in range(4):
        for user in ("a", "b", "c"):
            for item in ("x", "y", "z", f"new{round_}"):
                n += 1
                engine.learn(click(n, user, item, "buy" if n % 5 == 0 else "click"))
            engine.recommend(user, 10)  # builds the arrays, which later pairs then update
        engine.drain_changes()
        assert_mirrors_counts(engine)


def test_a_new_items_pairs_are_in_the_lists_at_once() -> None:
    """A click of an item nobody clicked before pairs it with the user's recent items: the
    next read of their lists holds it, whether or not the lists were read before."""
    engine = Engine(personal_config(load_settings()))
    for n, item in enumerate(("a", "b", "c"), start=1):
        engine.learn(click(n, "u1", item))
    engine.recommend("u1", 10)
    engine.learn(click(4, "u1", "brand-new"))
    for item in "abc":
        assert mirrored(engine, "also_clicked", item)["brand-new"] == 1.0
    assert_mirrors_counts(engine)


def reference_scores(
    engine: Engine, anchors: list[str], weights: list[float], relations: dict[str, float]
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """The documented rule with plain dictionaries: per anchor and relation, each partner's
    ``count / (popularity + 1) ** discount`` over the anchor's best, times the anchor's weight and the
    relation's, summed; and per item, the anchors (most recent first) that hold it."""
    discount = engine.neighbours.discount
    totals: dict[str, float] = {}
    held: dict[str, set[int]] = {}
    for relation, relation_weight in relations.items():
        popularity = engine.cooc.popularity[DISCOUNT_BY[relation]]
        for rank, (anchor, weight) in enumerate(zip(anchors, weights, strict=True)):
            counts = {
                p: c
                for p, c in engine.cooc.counts()[relation].get(anchor, {}).items()
                if p in engine.model.item_index
            }
            discounted = {
                p: c / (popularity.get(p, 0.0) + 1.0) ** discount for p, c in counts.items()
            }
            if not discounted:
                continue
            best = max(discounted.values())
            best = best if best > 0 else 1.0
            for partner, value in discounted.items():
                totals[partner] = totals.get(partner, 0.0) + weight * relation_weight * value / best
                held.setdefault(partner, set()).add(rank)
    return totals, {item: [anchors[r] for r in sorted(ranks)] for item, ranks in held.items()}


@pytest.mark.parametrize("discount", [0.3, 0.5])  # the default, and the square-root path
def test_vector_scores_and_sources_equal_the_rule_computed_item_by_item(discount: float) -> None:
    """Every (anchor, relation) list is scored in one set of vector steps: the result must be
    what the rule gives list by list, for any relation weights (one relation off included)."""
    engine = Engine(personal_config(load_settings(related_discount=discount)))
    rng = random.Random(7)
    for n in range(1, 3000):
        kind = rng.choice(["click", "click", "click", "buy", "basket"])
        engine.learn(
            click(n, f"u{rng.randrange(40)}", f"i{int(rng.paretovariate(1.2)) % 60}", kind)
        )
    engine.drain_changes()
    anchors = [f"i{k}" for k in (3, 1, 17, 2, 40, 99)]  # i99 was never seen: no partners
    weights = [1.0 / (1 + rank) for rank in range(len(anchors))]
    ids = engine.model.item_ids
    for relations in (
        {"also_clicked": 1.0, "also_bought": 0.5, "viewed_then_bought": 2.0},
        {"also_clicked": 1.0, "also_bought": 0.0, "viewed_then_bought": 0.3},
    ):
        scores, attribution = engine.neighbours.scores(anchors, weights, len(ids), relations)
        # Bit for bit what adding each relation's scores in turn gives (lists stay the same
        # however close two scores are).
        total = np.zeros(len(ids))
        for relation, weight in relations.items():
            if weight > 0:
                total += engine.neighbours.scores(anchors, weights, len(ids), {relation: weight})[0]
        assert np.array_equal(scores, total)
        expected, held = reference_scores(
            engine, anchors, weights, {r: w for r, w in relations.items() if w > 0}
        )
        assert len(expected) > 20
        assert {ids[i]: s for i, s in enumerate(scores.tolist()) if s} == pytest.approx(expected)
        served = sorted(held)[:25] + ["i0"]
        ranks = attribution.first_ranks(np.array([engine.model.item_index[i] for i in served]), 3)
        named = {
            item: [attribution.anchors[rank] for rank in first if rank >= 0]
            for item, first in zip(served, ranks, strict=True)
        }
        assert {item: led for item, led in named.items() if led} == {
            item: held[item][:3] for item in served if item in held
        }
        assert all(len(first) == 3 for first in ranks)


def test_stored_list_entries_follow_the_blend_and_name_the_anchors_that_hold_each_item() -> None:
    """A for-you list as stored: the blend's best items (ties by index, bought items left
    out), scores rounded to 6 digits, and per item the first three recent items (most
    recent first) whose partners hold it; items no recent item led to name none."""
    engine = Engine(personal_config(load_settings()))
    rng = random.Random(11)
    for n in range(1, 4000):
        kind = rng.choice(["click", "click", "click", "buy", "basket"])
        item = f"i{rng.randrange(20)}" if rng.random() < 0.5 else f"i{rng.randrange(3000)}"
        engine.learn(click(n, f"u{rng.randrange(200)}", item, kind))
    engine.drain_changes()
    c = engine.config.blend
    ids = engine.model.item_ids
    led_lists = unled_items = 0
    for user in [f"u{k}" for k in range(30)]:
        history = engine.histories[user]
        anchors = history.items_since(0)[: c.neighbour_items]
        weights = [c.neighbour_weight / (1.0 + rank) for rank in range(len(anchors))]
        relations = {r: w for r, w in c.neighbour_relations.items() if w > 0}
        _, held = reference_scores(engine, anchors, weights, relations)
        blend = engine.recommender.parts(user).blend
        excluded = set(history.excluded)
        order = sorted(
            (i for i in range(len(ids)) if ids[i] not in excluded), key=lambda i: (-blend[i], i)
        )[:300]
        entries = engine.recommender.entries(user, 300)
        assert [entry["item_id"] for entry in entries] == [ids[i] for i in order]
        assert [entry["score"] for entry in entries] == [round(blend[i], 6) for i in order]
        for entry in entries:
            expected = {"model": "for_you", "stage": "personal"}
            if entry["item_id"] in held:
                expected["source_items"] = held[entry["item_id"]][:3]
            assert entry["source"] == expected
        led_lists += any(len(held.get(e["item_id"], [])) > 1 for e in entries)
        unled_items += sum(e["item_id"] not in held for e in entries)
    # Items held by several anchors (the order of the names is tested), and items no recent
    # item led to (served for their factors).
    assert led_lists > 10
    assert unled_items > 10


def login(n: int, anonymous: str, user: str) -> object:
    return event_from_dict(
        {
            "event_id": f"e{n}",
            "type": "login",
            "user_id": user,
            "previous_user_id": anonymous,
            "timestamp": T0 + n * 1000,
        }
    )


def random_events(
    rng: random.Random, users: int, anonymous: int, items: int, logins: float
) -> Iterator[object]:
    """Endless events: clicks, buys and baskets of long-tailed items by ``users`` known
    users and ``anonymous`` anonymous ids, and a share ``logins`` of logins (whose
    corrections drop partners)."""
    ids = [f"u{k}" for k in range(users)] + [f"anon{k}" for k in range(anonymous)]
    n = 0
    while True:
        n += 1
        if rng.random() < logins:
            yield login(n, f"anon{rng.randrange(anonymous)}", f"u{rng.randrange(users)}")
        else:
            item = f"i{int(rng.paretovariate(0.8)) % items}"
            kind = rng.choice(["click", "click", "buy", "basket"])
            yield click(n, rng.choice(ids), item, kind)


@pytest.mark.parametrize("max_neighbours", [10, 200])  # lists past the depth, and within it
def test_related_items_from_the_arrays_equal_the_rule_over_the_counts(max_neighbours: int) -> None:
    """The evaluation's related items come from the partner arrays: the same items, scores,
    order and labels as ranking each relation's counts and blending them (the rule the
    reader's script applies), with ties broken by id, lists longer than the depth (before
    a trim), partners a login's correction took back, and excluded items."""
    engine = Engine(personal_config(load_settings(related_max_neighbours=max_neighbours)))
    rng = random.Random(11)
    for n in range(1, 4000):
        if n % 97 == 0:
            engine.learn(login(n, f"anon{n % 7}", f"u{rng.randrange(40)}"))
            continue
        user = f"anon{rng.randrange(7)}" if n % 5 == 0 else f"u{rng.randrange(40)}"
        kind = rng.choice(["click", "click", "click", "buy", "basket"])
        engine.learn(click(n, user, f"i{int(rng.paretovariate(1.0)) % 80}", kind))
        if n % 1500 == 0:
            engine.drain_changes()
    # Login corrections of pairs a trim had already dropped, and of pairs held once: the
    # counts drop them (nothing to take back, or down to 0), and so must the arrays, also
    # when the pair is counted again afterwards (then once, not less).
    engine.neighbours.partners("also_clicked", "i0")
    counts = engine.cooc.counts()["also_clicked"]["i0"]
    absent = next(i for i in engine.model.item_ids if i not in counts and i != "i0")
    once = next(p for p, c in counts.items() if c == 1.0)
    for amount in (-1.0, -1.0, 1.0):
        for partner in (absent, once):
            pair = [("also_clicked", "i0", partner, amount)]
            engine.cooc.apply(pair)
            engine.neighbours.partners("also_clicked", "i0")
    counts = engine.cooc.partners("also_clicked", "i0")
    assert counts[absent] == counts[once] == 1.0
    assert_mirrors_counts(engine)
    config = engine.config.related
    longest = max(len(p) for counts in engine.cooc.counts().values() for p in counts.values())
    if max_neighbours == 10:
        assert longest > 10  # some lists are deeper than the depth asked
    checked = 0
    for anchor in [f"i{k}" for k in range(80)] + ["never-seen"]:
        for relations in (list(RELATIONS), ["also_clicked"], ["viewed_then_bought"]):
            for n, exclude in ((10, set()), (5, {"i1", "i2", anchor}), (300, {"i3"})):
                depth = max(n, config.max_neighbours)
                lists = {
                    name: engine.cooc.related(anchor, name, depth, exclude) for name in relations
                }
                expected = blend_related(lists, n)
                got = engine.neighbours.related(anchor, relations, n, depth, exclude)
                assert got == expected
                checked += len(expected)
    assert checked > 1000


@pytest.mark.parametrize("partners", [2, 9])
def test_related_items_of_a_depth_of_none_are_none(partners: int) -> None:
    """Asked for several relations' best none, the rule blends nothing: the arrays too,
    whatever the lists hold (a selection of none hung on nine partners, and a list of two
    left an empty maximum)."""
    engine = Engine(personal_config(load_settings()))
    for n, item in enumerate("abcdefghij"[: partners + 1], start=1):
        engine.learn(click(n, "u", item))
    assert len(engine.cooc.counts()["also_clicked"]["a"]) == partners
    assert blend_related({r: engine.cooc.related("a", r, 0, ()) for r in RELATIONS}, 0) == []
    assert engine.neighbours.related("a", list(RELATIONS), 0, 0, ()) == []


def lists(engine: Engine, users: list[str]) -> list[list[tuple[str, float]]]:
    return [[(r.item_id, r.score) for r in engine.recommend(user, 20)] for user in users]


def test_an_engine_that_sums_pairs_for_the_store_serves_what_one_that_does_not_serves() -> None:
    """A worker's engine sums each batch's pairs for the store; an evaluation's engine does
    not. Through logins (whose corrections drop partners), trims, reads in the middle of
    batches and after drains, both serve the same lists and related items, and both
    lists mirror the counts."""
    config = personal_config(load_settings(related_max_neighbours=10))
    batched, per_pair = Engine(config), Engine(config, pair_writes=False)
    rng = random.Random(5)
    users = [f"u{k}" for k in range(30)] + [f"anon{k}" for k in range(6)]
    events = random_events(rng, users=30, anonymous=6, items=60, logins=0.02)
    for _ in range(40):
        for _ in range(rng.randrange(1, 120)):
            event = next(events)
            batched.learn(event)
            per_pair.learn(event)
            if rng.random() < 0.01:  # a read in the middle of a batch
                readers = rng.sample(users, 3)
                assert lists(batched, readers) == lists(per_pair, readers)
        batched.drain_changes()
        per_pair.drain_changes()
        readers = rng.sample(users, 5)
        assert lists(batched, readers) == lists(per_pair, readers)
    for item in [f"i{k}" for k in range(60)]:
        got = [(r.item_id, r.score) for r in batched.related(item, 10)]
        assert got == [(r.item_id, r.score) for r in per_pair.related(item, 10)]
    assert_mirrors_counts(batched)
    assert_mirrors_counts(per_pair)


def test_a_partner_dropped_and_counted_again_in_one_batch_ends_with_its_count() -> None:
    """A login's correction that drops a partner, then new pairs that count it again, in
    one batch: the list holds the count the partner ends with (3), not the held count plus
    the batch's sum (1 - 2 + 3 = 2), which is what the batch writes to the store."""
    engine = Engine(personal_config(load_settings()))
    for n, item in enumerate(("a", "b", "c"), start=1):
        engine.learn(click(n, "u1", item))
    engine.drain_changes()
    assert mirrored(engine, "also_clicked", "a") == {"b": 1.0, "c": 1.0}
    engine.cooc.apply([("also_clicked", "a", "b", -2.0), ("also_clicked", "a", "b", 3.0)])
    assert mirrored(engine, "also_clicked", "a") == {"b": 3.0, "c": 1.0}
    assert engine.drain_changes().pairs == {"also_clicked": {"a": {"b": 1.0}}}
    assert_mirrors_counts(engine)


def test_a_partner_the_model_learns_late_joins_the_arrays_with_its_count() -> None:
    """An anchor's lists, as scored, leave out a partner the model does not know (a stored
    history may name an item this worker never learned); its pairs still count. When the
    model learns the item, the lists hold it with its count, whether the engine sums its
    pairs for the store (a worker) or not (an evaluation)."""
    for pair_writes in (False, True):
        engine = Engine(personal_config(load_settings()), pair_writes=pair_writes)
        engine.restore_user(
            "u", {"recent": [["x", "click", T0 + 1000]], "excluded": {}}, None, None
        )
        engine.learn(click(2, "u", "y"))  # y <-> x: 1
        engine.drain_changes()
        assert "x" not in mirrored(engine, "also_clicked", "y")  # x is not in the model yet
        engine.learn(click(3, "v", "x"))  # the model learns x (v has no history: no pair)
        engine.learn(click(4, "w", "y"))
        engine.learn(click(5, "w", "x"))  # y <-> x: 2
        engine.drain_changes()
        assert engine.cooc.counts()["also_clicked"]["y"]["x"] == 2.0
        assert_mirrors_counts(engine)


class DictCounts:
    """The counts' rule with plain dictionaries (as ``CoOccurrence`` held them before its
    arena): an independent reference for what the engine counts."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.lists: dict[tuple[str, str], dict[str, float]] = {}
        self.touched: set[tuple[str, str]] = set()

    def apply(self, pairs: list[Pair]) -> None:
        for relation, anchor, partner, amount in pairs:
            partners = self.lists.setdefault((relation, anchor), {})
            count_pair(partners, partner, amount)
            if len(partners) > 2 * self.cap:
                self.touched.add((relation, anchor))

    def trim(self) -> None:
        for key in self.touched:
            if len(self.lists[key]) > 2 * self.cap:
                self.lists[key] = trim(self.lists[key], self.cap)
        self.touched.clear()

    def counts(self) -> dict[str, dict[str, dict[str, float]]]:
        return {
            relation: {a: dict(p) for (r, a), p in self.lists.items() if r == relation and p}
            for relation in RELATIONS
        }


def test_the_engines_counts_are_the_rule_over_the_pairs_it_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every pair the engine counts (events', logins' corrections), as it is counted, goes
    to a dictionary reference too: after each drain (which trims) both hold the same lists, and the lists
    as scored mirror them."""
    engine = Engine(personal_config(load_settings(related_max_neighbours=10)))
    reference = DictCounts(10)
    lists = engine.cooc.lists
    count = lists.flush

    def both() -> None:
        size = lists.waiting_count
        codes, anchors, partners = lists.waiting[:, :size].tolist()
        amounts = lists.waiting_amounts[:size].tolist()
        reference.apply(
            [
                (RELATIONS[code], lists.ids[anchor], lists.ids[partner], amount)
                for code, anchor, partner, amount in zip(
                    codes, anchors, partners, amounts, strict=True
                )
            ]
        )
        count()

    monkeypatch.setattr(lists, "flush", both)
    rng = random.Random(3)
    events = random_events(rng, users=25, anonymous=5, items=70, logins=0.03)
    for _ in range(30):
        for _ in range(rng.randrange(1, 150)):
            engine.learn(next(events))
        engine.drain_changes()
        reference.trim()
        assert engine.cooc.counts() == reference.counts()
    assert sum(len(lists) for lists in reference.counts().values()) > 100
    assert_mirrors_counts(engine)


def test_lists_scored_before_the_model_knew_a_partner_hold_it_once_it_does() -> None:
    """A worker's restored history names x, an item its model does not know: the pair
    y <-> x counts, and y's list as scored leaves x out. Once the model learns x, from an
    event that makes no pair with y, y's list as scored holds x with its count, as the
    counts do. (The neighbour index's own copy of the lists, before they were read from
    the counts, kept x out until a new pair named it.)"""
    engine = Engine(personal_config(load_settings()))
    engine.restore_user("u", {"recent": [["x", "click", T0 + 1000]], "excluded": {}}, None, None)
    engine.learn(click(2, "u", "y"))  # y <-> x: 1
    assert mirrored(engine, "also_clicked", "y") == {}  # x is not in the model
    engine.learn(click(3, "v", "x"))  # v has no history: no pair
    assert mirrored(engine, "also_clicked", "y") == {"x": 1.0}
    assert_mirrors_counts(engine)
