"""Related items in Redis: what the personal agent loads at start and writes per batch.

Keys (``pipeline.core.keys``): ``related:{relation}:{item_id}`` (partner -> count, capped),
``related:anchors`` (items that have lists, so a starting worker needs no key scan) and
``popularity:{signal}`` (item -> count of positive events, the discount's denominator).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from pipeline.core.feedback import SIGNALS
from pipeline.core.keys import Keys
from pipeline.features.related.model import RELATIONS, CoOccurrence, PairCounts
from pipeline.store.base import Reads, Store, Writes

# Anchors whose lists are read per round trip at start.
LOAD_CHUNK = 500


def queue_pairs(writes: Writes, keys: Keys, pairs: PairCounts, max_neighbours: int) -> None:
    """Add a batch's pair counts (summed per list: :meth:`CoOccurrence.take_sums`), capped
    as :meth:`CoOccurrence.trim_touched` caps them."""
    anchors: set[str] = set()
    for relation, lists in pairs.items():
        for item_id, partners in lists.items():
            anchors.add(item_id)
            # A login's correction and a new pair may cancel out within a batch (rarely: the
            # test is a C loop, the filter a Python one).
            changed = partners
            if 0.0 in partners.values():
                changed = {partner: amount for partner, amount in partners.items() if amount}
            if changed:
                writes.zincr_trim(
                    keys.related(relation, item_id), changed, max_neighbours, 2 * max_neighbours
                )
    if anchors:
        writes.sadd(keys.related_anchors(), sorted(anchors))


def queue_popularity(writes: Writes, keys: Keys, counts: Mapping[tuple[str, str], float]) -> None:
    """Add ``{(signal, item_id): amount}`` to the popularity counters."""
    by_signal: dict[str, dict[str, float]] = defaultdict(dict)
    for (signal, item_id), amount in counts.items():
        by_signal[signal][item_id] = amount
    for signal, increments in by_signal.items():
        writes.hincr_float(keys.popularity(signal), increments)


async def load_popularity(store: Store, keys: Keys) -> dict[str, dict[str, float]]:
    """signal -> item_id -> count, as stored."""
    reads = Reads()
    for signal in SIGNALS:
        reads.hgetall(keys.popularity(signal))
    rows = await store.read(reads)
    return {
        signal: {item_id.decode(): float(count) for item_id, count in row.items()}
        for signal, row in zip(SIGNALS, rows, strict=True)
    }


async def load_counts(store: Store, keys: Keys, cooc: CoOccurrence) -> None:
    """Every stored related list into ``cooc`` (replacing the lists it holds)."""
    anchors = sorted(member.decode() for member in await store.smembers(keys.related_anchors()))
    for start in range(0, len(anchors), LOAD_CHUNK):
        chunk = anchors[start : start + LOAD_CHUNK]
        reads = Reads()
        for anchor in chunk:
            for relation in RELATIONS:
                reads.zrange(keys.related(relation, anchor), 0, -1)
        rows = iter(await store.read(reads))
        for anchor in chunk:
            for relation in RELATIONS:
                members = next(rows)
                if members:
                    cooc.load(relation, anchor, {m.decode(): score for m, score in members})
