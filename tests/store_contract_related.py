"""The store contract, continued: the related-items read (``Reads.related_blend``), which the
Redis store runs as a script and the memory store in Python. Imported with
``tests/store_contract.py`` by both stores' test modules."""

from __future__ import annotations

import random

import pytest

from pipeline.core.blend import blend_related, rank_related
from pipeline.store.base import Reads, Store, Writes
from tests.store_contract import Key

pytestmark = pytest.mark.asyncio


def top_by_count(counts: dict[str, float], depth: int) -> list[tuple[str, float]]:
    """The ``depth`` highest as a descending range reads them (ties by member bytes, reversed)."""
    return sorted(counts.items(), key=lambda row: (row[1], row[0].encode()), reverse=True)[:depth]


async def test_related_blend_applies_the_rule_of_pipeline_core_blend(
    store: Store, key: Key
) -> None:
    """Ranked and blended by the store (a script in Redis): exactly what the core rule gives
    on the same data, scores included, for one set and for several, with hidden, excluded
    and weightless members, tied scores, a depth that cuts, and beside other reads."""
    rng = random.Random(11)
    # Upper and lower case (byte order differs from most locales' collation), non-ASCII.
    members = [f"item-{i}" for i in range(60)] + ["ünï-1", "a/b", "Item-B", "item-a", "ITEM-c"]
    labels = ["also_clicked", "also_bought", "viewed_then_bought"]
    sets, counts, weights = [], {}, {}
    writes = Writes()
    for label in labels:
        chosen = rng.sample(members, 40)
        # Small integer counts: ties in count, and in discounted score among equal weights.
        counts[label] = {m: float(rng.randint(1, 6)) for m in chosen}
        weights[label] = {m: float(rng.randint(0, 30)) for m in chosen if rng.random() < 0.8}
        writes.zadd(key(f"rel:{label}"), counts[label])
        writes.hincr_float(key(f"pop:{label}"), weights[label])
        sets.append((key(f"rel:{label}"), key(f"pop:{label}"), label))
    hidden = rng.sample(members, 8)
    writes.sadd(key("hidden"), hidden)
    await store.apply(writes)
    excluded = members[0]
    for depth, discount, n, chosen_sets in (
        (50, 0.4, 10, sets),
        (25, 0.5, 30, sets),
        (50, 0.4, 7, sets[1:2]),
        (10, 0.0, 50, sets[:2]),
    ):
        expected = blend_related(
            {
                label: rank_related(
                    top_by_count(counts[label], depth),
                    weights[label],
                    discount,
                    depth,
                    {*hidden, excluded},
                )
                for _, _, label in chosen_sets
            },
            n,
        )
        assert expected
        reads = Reads().get(key("missing"))
        reads.related_blend(chosen_sets, key("hidden"), excluded, depth, discount, n)
        _, found = await store.read(reads)
        assert found == expected
        (alone,) = await store.read(
            Reads().related_blend(chosen_sets, key("hidden"), excluded, depth, discount, n)
        )
        assert alone == expected
    nothing = [(key("rel:none"), key("pop:none"), "also_clicked")]
    assert await store.read(Reads().related_blend(nothing, key("hidden"), "x", 5, 0.4, 5)) == [[]]


async def test_related_blend_reads_unusable_weights_as_zero(store: Store, key: Key) -> None:
    """A weight that is not a number, negative or NaN counts 0 (stored fields are a public
    contract others may write); missing ones too. Same answer from every store."""
    writes = Writes().zadd(key("rel"), {"a": 4.0, "b": 4.0, "c": 4.0, "d": 4.0, "e": 2.0})
    writes.hset(key("pop"), {"a": "abc", "b": "-3", "c": "nan", "e": "3"})
    await store.apply(writes)
    sets = [(key("rel"), key("pop"), "also_clicked")]
    (found,) = await store.read(Reads().related_blend(sets, key("hidden"), "x", 10, 0.5, 10))
    assert found == [
        ("a", 4.0, "also_clicked"),
        ("b", 4.0, "also_clicked"),
        ("c", 4.0, "also_clicked"),
        ("d", 4.0, "also_clicked"),
        ("e", 1.0, "also_clicked"),
    ]
    assert await store.read(Reads().related_blend(sets, key("hidden"), "x", 0, 0.5, 10)) == [[]]


async def test_related_blend_reads_sets_larger_than_one_call(store: Store, key: Key) -> None:
    """More members than one HMGET/SMISMEMBER of the script takes (1,000 per call): every
    member's weight and hidden flag is read, the same answer as the core rule."""
    rng = random.Random(5)
    members = [f"item-{i}" for i in range(2500)]
    # The last 500 by count (what the last call reads) are the best partners once
    # discounted (light weights; the others' are heavy): a weight or hidden flag read
    # from the wrong position or left out changes the answer.
    last = set(members[2000:])
    counts = {m: float(rng.randint(1, 5) if m in last else rng.randint(10, 50)) for m in members}
    weights = {m: float(rng.randint(0, 3) if m in last else 10**6) for m in members}
    hidden = members[2400:2450]
    writes = Writes().zadd(key("rel"), counts).hincr_float(key("pop"), weights)
    await store.apply(writes.sadd(key("hidden"), hidden))
    sets = [(key("rel"), key("pop"), "also_clicked")]
    expected = blend_related(
        {"also_clicked": rank_related(top_by_count(counts, 2500), weights, 0.4, 2500, hidden)},
        40,
    )
    (found,) = await store.read(Reads().related_blend(sets, key("hidden"), "x", 2500, 0.4, 40))
    assert found == expected
    assert not {member for member, _, _ in found} & set(hidden)
