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

# Relative rounding of a sum of affinities below which what is left of a user is nothing.
ROUNDING = 1e-9
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
        writes.zadd_expire(
            keys.user_segments(user_id, gen),
            dict.fromkeys(sorted(map(segment_member, segments)), 0.0),
            expire_at_s(gen + 1, half_life_s),
        )
    return writes


# item_id -> (attribute segments before, attribute segments now)
SegmentChanges = Mapping[str, tuple[Iterable[Segment], Iterable[Segment]]]


async def move_writes(
    store: Store,
    keys: Keys,
    changes: SegmentChanges,
    generations: Iterable[int],
    max_users: int,
    trim_above: int,
    half_life_s: float,
) -> Writes:
    """Writes that move the affinities of items whose attribute segments changed (the
    catalog agent calls this; one read).

    An event adds the same amount to the item's own segment and to each of its attribute
    segments, so the item's own segment holds what its users brought to the attribute
    segments. When the catalog changes an item's categories or attributes (or the item's
    record arrives after its events), each user's affinity in the item's own segment is
    added to the segments the item gained, and taken from those it lost (users left with
    nothing go), in every live generation; the users' indexes list the segments they
    entered, so a forget still finds them.
    """
    writes = Writes()
    moved = {
        item_id: (
            sorted(set(now) - set(before), key=segment_member),
            sorted(set(before) - set(now), key=segment_member),
        )
        for item_id, (before, now) in changes.items()
        if set(now) != set(before)
    }
    if not moved:
        return writes
    gens = list(generations)
    targets = [(item_id, gen) for item_id in sorted(moved) for gen in gens]
    reads = Reads()
    for item_id, gen in targets:
        reads.zrange(segment_key(keys, Segment(None, item_id), gen), 0, -1)
    rows = await store.read(reads)
    entered: dict[tuple[str, int], set[Segment]] = {}
    # Segment key -> user -> affinity it loses (summed over the items that lose the key).
    losses: dict[str, dict[str, float]] = {}
    found = {
        # Exclusion markers (-inf) and anything not positive carry no affinity.
        target: {
            member.decode(): float(score)
            for member, score in members
            if 0 < float(score) < float("inf")
        }
        for target, members in zip(targets, rows, strict=True)
    }
    for (item_id, gen), users in found.items():
        if not users:
            continue
        gained, lost = moved[item_id]
        expire = expire_at_s(gen, half_life_s)
        earlier = found.get((item_id, gen - 1), {})
        for segment in gained:
            writes.zincr_trim(segment_key(keys, segment, gen), users, max_users, trim_above, expire)
            for user_id in users:
                # Events of generation g are in the keys of g and g + 1 and listed by the
                # index of g: a user also in the previous key came from there.
                index_gen = gen - 1 if user_id in earlier else gen
                entered.setdefault((user_id, index_gen), set()).add(segment)
        for segment in lost:
            share = losses.setdefault(segment_key(keys, segment, gen), {})
            for user_id, score in users.items():
                share[user_id] = share.get(user_id, 0.0) + score
    if losses:
        reads = Reads()
        for key, users in losses.items():
            reads.zmscore(key, sorted(users))
        for (key, users), scores in zip(losses.items(), await store.read(reads), strict=True):
            gone, kept = [], {}
            for user_id, score in zip(sorted(users), scores, strict=True):
                if score is None:
                    continue
                # What is left once the item's share goes; rounding leaves a trace of a
                # user who had nothing else here, which must not list them.
                if float(score) - users[user_id] <= ROUNDING * users[user_id]:
                    gone.append(user_id)
                else:
                    kept[user_id] = -users[user_id]
            writes.zrem(key, gone)
            writes.zincr_trim(key, kept, NO_TRIM, NO_TRIM)
    return index_writes(writes, keys, entered, half_life_s)
