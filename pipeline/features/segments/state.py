"""What the segments agent keeps per user beside the segments: the index a forget follows.

``{p}:user:{user_id}:segments:{gen}`` (``pipeline.core.keys``) is a sorted set of the
segments the user's events of generation ``gen`` put the user in (affinities and blacklist
markers, as ``model.segment_member``; score 0: membership is all it says); such an event
wrote to the segments' keys of ``gen`` and ``gen + 1``. The index is written in the batch
that adds the user to the segments and expires with the keys of ``gen + 1``, so it lives
exactly as long as what it lists. It is written as a capped increment (never capped) so
that the store sends a batch's indexes in the same script call as the segment increments.
A ``forget`` reads the indexes still alive, removes the user from every key they lead to
and deletes them (docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pipeline.core.decay import expire_at_s
from pipeline.core.keys import Keys
from pipeline.features.segments.model import (
    Segment,
    member_segment,
    segment_key,
    segment_member,
)
from pipeline.store.base import Reads, Store, Writes

# An index is never trimmed: a forget must find every segment the user entered.
NO_TRIM = 2**53


async def load_entered(
    store: Store, keys: Keys, user_ids: Sequence[str], generations: Iterable[int]
) -> dict[str, list[str]]:
    """Per user, the segment keys its indexes of ``generations`` lead to (one round trip)."""
    gens = list(generations)
    if not user_ids or not gens:
        return dict.fromkeys(user_ids, [])
    reads = Reads()
    for user_id in user_ids:
        for gen in gens:
            reads.zrange(keys.user_segments(user_id, gen), 0, -1)
    rows = iter(await store.read(reads))
    entered: dict[str, list[str]] = {}
    for user_id in user_ids:
        found: dict[str, None] = {}
        for gen in gens:
            for member, _ in next(rows):
                segment = member_segment(member.decode())
                if segment is not None:  # written by someone else: not ours to follow
                    found[segment_key(keys, segment, gen)] = None
                    found[segment_key(keys, segment, gen + 1)] = None
        entered[user_id] = list(found)
    return entered


def forget_writes(
    writes: Writes, keys: Keys, entered: Mapping[str, Sequence[str]], generations: Iterable[int]
) -> Writes:
    """Remove each user from every segment key of ``entered``, then delete its indexes."""
    gens = list(generations)
    for user_id in sorted(entered):
        for key in entered[user_id]:
            writes.zrem(key, [user_id])
        writes.delete(*(keys.user_segments(user_id, gen) for gen in gens))
    return writes


def index_writes(
    writes: Writes,
    keys: Keys,
    entered: Mapping[tuple[str, int], set[Segment]],
    half_life_s: float,
) -> Writes:
    """Add the segments each (user, event generation) entered to the user's index of that
    generation, expiring with the segment keys of the next generation."""
    for (user_id, gen), segments in sorted(entered.items()):
        writes.zincr_trim(
            keys.user_segments(user_id, gen),
            dict.fromkeys(sorted(map(segment_member, segments)), 0.0),
            NO_TRIM,
            NO_TRIM,
            expire_at_s(gen + 1, half_life_s),
        )
    return writes
