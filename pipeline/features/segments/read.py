"""Reading segments: users for an item (its own affinity blended with its categories' and
attributes'), users for an attribute value; both narrowed to users with given attributes
(the users feature's records) on request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.core.decay import decayed, generation
from pipeline.core.events import MAX_CONTEXT_STRING
from pipeline.core.ids import InvalidInput, decode_id, valid_id
from pipeline.core.keys import Keys
from pipeline.features.catalog.read import (
    ATTRIBUTES,
    CATEGORIES,
    parse_item_fields,
    queue_item_fields,
)
from pipeline.features.personal.history import CONVERSION_ENTRIES
from pipeline.features.personal.read import parse_history
from pipeline.features.segments.model import (
    Segment,
    SegmentsConfig,
    attribute_segments,
    item_segment,
    rank_item_segment,
    segment_key,
)
from pipeline.features.users.read import users_attributes
from pipeline.store.base import Reads, Store

# Exclusion markers read per item: users who blacklisted it.
MAX_EXCLUDED = 10_000
_ITEM_FIELDS = (CATEGORIES, ATTRIBUTES)


def _candidate_depth(n: int) -> int:
    """Users read from each list for the blend: more than ``n``, as a user ranked below
    ``n`` in every single list may still make the blended top ``n``."""
    return 2 * n + 20


def _users(rows: Sequence[tuple[bytes, float]], factor: float) -> list[tuple[str, float]]:
    """Sorted-set rows to (user_id, decayed affinity); members that break the id contract
    are never served."""
    out = []
    for member, stored in rows:
        user = decode_id(member)
        if user is not None:
            out.append((user, stored * factor))
    return out


async def users_for_item(
    store: Store, keys: Keys, item_id: str, n: int, now_ms: int, config: SegmentsConfig
) -> list[dict[str, Any]]:
    """Users for an item, best first, in two round trips.

    First the catalog fields, the item's own segment and its exclusion markers; then the
    top of each category/attribute segment of the item. ``score`` is the blend of
    ``rank_item_segment`` (0-1.5); ``source.direct`` and ``source.attributes[].affinity``
    are the decayed affinities at ``now_ms`` it was built from.
    """
    half_life_s = config.half_life_s
    gen = generation(now_ms, half_life_s)
    factor = decayed(1.0, gen, half_life_s, now_ms)
    depth = _candidate_depth(n)
    own = segment_key(keys, item_segment(item_id), gen)
    reads = Reads()
    queue_item_fields(reads, keys, item_id, _ITEM_FIELDS)
    reads.zrange_by_score(own, "(0", "+inf", desc=True, count=depth)
    reads.zrange_by_score(own, "-inf", "-inf", count=MAX_EXCLUDED)
    fields_row, own_rows, marker_rows = await store.read(reads)
    fields = parse_item_fields(_ITEM_FIELDS, fields_row)
    segments = attribute_segments(fields.categories, fields.attributes, config.max_attributes)
    attribute_rows: list[Any] = []
    if segments:
        reads = Reads()
        for segment in segments:
            reads.zrange_by_score(
                segment_key(keys, segment, gen), "(0", "+inf", desc=True, count=depth
            )
        attribute_rows = await store.read(reads)

    excluded = {member.decode("utf-8", "replace") for member, _ in marker_rows}
    direct = _users(own_rows, factor)
    by_attribute = [_users(rows, factor) for rows in attribute_rows]
    direct_of = dict(direct)
    attribute_of = [dict(rows) for rows in by_attribute]
    users = []
    for user, score in rank_item_segment(direct, by_attribute, n, exclude=excluded):
        via = [
            {"attribute": segment.attribute, "value": segment.value, "affinity": affinities[user]}
            for segment, affinities in zip(segments, attribute_of, strict=True)
            if user in affinities
        ]
        source = {
            "model": "segments",
            "item_id": item_id,
            "direct": direct_of.get(user, 0.0),
            "attributes": via,
        }
        users.append({"user_id": user, "score": score, "source": source})
    return users


async def users_for_attribute(
    store: Store,
    keys: Keys,
    attribute: str,
    value: str,
    n: int,
    now_ms: int,
    config: SegmentsConfig,
) -> list[dict[str, Any]]:
    """The ``n`` users with the highest affinity for one attribute value (``category``:
    catalog categories); ``score`` is the decayed affinity at ``now_ms``."""
    half_life_s = config.half_life_s
    gen = generation(now_ms, half_life_s)
    key = segment_key(keys, Segment(attribute, value), gen)
    rows = await store.zrange_by_score(key, "(0", "+inf", desc=True, count=n)
    source = {"model": "segments", "attribute": attribute, "value": value}
    factor = decayed(1.0, gen, half_life_s, now_ms)
    return [
        {"user_id": user, "score": score, "source": source} for user, score in _users(rows, factor)
    ]


async def campaign_audience(
    store: Store,
    keys: Keys,
    users: list[dict[str, Any]],
    n: int,
    item_id: str | None = None,
    active_since_ms: int | None = None,
) -> list[dict[str, Any]]:
    """The first ``n`` of ``users`` (best first) a campaign should reach: without those who
    already converted on ``item_id`` (bought, consumed, put in a basket or rated it well),
    and, with ``active_since_ms``, only those with an interaction since then. One round trip
    for the users' histories; a user without one (idle long enough for it to expire) counts
    as inactive."""
    if not users or (item_id is None and active_since_ms is None):
        return users[:n]
    stored = await store.mget([keys.user_history(entry["user_id"]) for entry in users])
    kept = []
    for entry, raw in zip(users, stored, strict=True):
        history = parse_history(raw)
        if item_id is not None and (
            item_id in history.excluded or item_id in history.items(CONVERSION_ENTRIES)
        ):
            continue
        if active_since_ms is not None and (
            not history.recent or history.recent[0][2] < active_since_ms
        ):
            continue
        kept.append(entry)
        if len(kept) == n:
            break
    return kept


def parse_user_attributes(conditions: Sequence[str]) -> list[tuple[str, str]]:
    """``user_attribute`` parameters (``name:value``) as pairs; :class:`InvalidInput` says
    which is malformed."""
    pairs = []
    for condition in conditions:
        name, sep, value = condition.partition(":")
        if not sep or not valid_id(name) or not value or len(value) > MAX_CONTEXT_STRING:
            raise InvalidInput(
                f"user_attribute must be name:value (an attribute name and a value), "
                f"not {condition[:80]!r}"
            )
        pairs.append((name, value))
    return pairs


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def holds(attributes: Mapping[str, Any], name: str, value: str) -> bool:
    """Whether a user's attribute ``name`` is ``value`` (or, for a list, contains it);
    numbers and booleans compare as text (``42``, ``true``)."""
    found = attributes.get(name)
    entries = found if isinstance(found, list) else [found]
    return any(entry is not None and _as_text(entry) == value for entry in entries)


async def with_user_attributes(
    store: Store,
    keys: Keys,
    users: list[dict[str, Any]],
    conditions: Sequence[tuple[str, str]],
    n: int,
) -> list[dict[str, Any]]:
    """The first ``n`` of ``users`` whose stored attributes (the users feature's records)
    meet every ``(name, value)`` condition; one round trip."""
    if not conditions:
        return users[:n]
    found = await users_attributes(store, keys, [entry["user_id"] for entry in users])
    kept = [
        entry
        for entry in users
        if all(holds(found.get(entry["user_id"], {}), name, value) for name, value in conditions)
    ]
    return kept[:n]
