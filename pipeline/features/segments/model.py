"""User segments: which users have an affinity for an item or for an attribute value.

The counterpart of Amazon Personalize's Item-Affinity and Item-Attribute-Affinity recipes,
kept current per event instead of per batch job. Each positive event of user ``u`` on item
``i`` (the feedback rule of ``pipeline.core.feedback``: its weight per type, not scaled by
``value``) adds its weight ``w`` to:

- the item's own segment: ``item_segment(i)[u] += w``;
- one attribute segment per catalog category ``c``: ``attribute_segment("category", c)``;
- one attribute segment per catalog attribute value: ``attribute_segment(name, value)``.
  A list value counts each element. Strings must pass ``valid_id``; numbers become text
  (``42``, ``1.5``; a whole float such as ``2.0`` becomes ``2`` so that producers writing
  2 and 2.0 share one segment); booleans become ``true`` / ``false``; anything else (long
  strings, spaces, objects, nested lists) is skipped. An attribute *named* ``category``
  shares the segments of catalog categories. At most ``max_attributes`` attribute
  segments per item (categories first, then attributes in catalog order) bound the work per
  event.

**Decay.** Affinities use forward decay with one half-life (default 30 days) and the
generation scheme of ``pipeline.core.decay``: an event adds ``forward_weight`` to the segment of its
generation ``g`` and of ``g + 1``; readers read the generation current at ``now`` and decay
with ``decayed``. No rescans: old behaviour fades because new behaviour is added with larger
weights, and each generation's set expires by TTL (``expire_at_s``). Because a stored
score grows with the event's time, capping a set at its highest scores keeps the users with
the highest *decayed* affinity. The generation is the last part of the Redis key (see
:func:`segment_key`).

**Blacklist.** A ``blacklist`` of item ``i`` by ``u`` puts an exclusion marker into ``i``'s
segment (generations ``g`` and ``g + 1`` of the event): ``u`` with score ``-inf``. Readers
skip markers and also leave ``u`` out of the blend of ``i``'s attribute segments, so the user
never appears in the item's segment, directly or through attributes. The marker is sticky
(a later positive event adds to ``-inf`` and stays ``-inf``) until its generations expire
(32 to 64 half-lives). Markers have the lowest score, so when a segment outgrows its cap
they are trimmed first: exclusion is best effort for items with more than ``max_users``
interested users. Attribute affinities are kept: disliking one item is not disliking its
category.

**Login.** A ``login`` (``previous_user_id`` -> ``user_id``) moves nothing: the anonymous
id's affinities are spread over every segment it touched, and moving them would cost a read
of each for a small gain. Events after the login carry the known ``user_id`` and accrue to
it; the anonymous id's entries decay and are trimmed away or expire with their generation
(a ``forget`` of the user leaves them: forget the anonymous id too, docs/privacy.md).

**Forget.** A ``forget`` of ``u`` removes ``u`` from every segment ``u`` entered. The agent
keeps, per user and event generation ``g``, the segments the user's events of ``g`` added
the user to (``{p}:user:{u}:segments:{g}``; the user is in their keys of ``g`` and ``g + 1``,
see :func:`segment_member`), expiring with the later of those keys; a forget removes ``u``
from the keys of every index still alive, in the batch's transaction. Within a batch,
``u``'s events before the forget (timestamp order, see
``pipeline.core.events.split_forgets``) are dropped by the fold; events after it start anew.

This module is pure (no redis, no faust): the agent (``agent.py``) and the read side
(``read.py``) call it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from pipeline.core.decay import generation, spread
from pipeline.core.events import Event, split_forgets
from pipeline.core.feedback import Feedback
from pipeline.core.ids import valid_id
from pipeline.core.keys import Keys

# Attribute name under which catalog categories are segmented.
CATEGORY = "category"
# Score of an exclusion marker (a user who blacklisted the item) in an item segment.
BLACKLISTED = float("-inf")

# Blend of rank_item_segment: each list is first divided by its own highest score, so the
# weights compare like with like. The item's direct affinity counts 1.0; the mean over the
# item's non-empty category/attribute segments counts 0.5. The user with the highest direct
# affinity therefore always ranks above every user who has none.
DIRECT_WEIGHT = 1.0
ATTRIBUTE_WEIGHT = 0.5


class Segment(NamedTuple):
    """One segment: an item's own (``attribute`` None, ``value`` the item id) or an
    attribute value's (``attribute`` ``category`` for catalog categories)."""

    attribute: str | None
    value: str


def item_segment(item_id: str) -> Segment:
    return Segment(None, item_id)


def segment_key(keys: Keys, segment: Segment, gen: int) -> str:
    """Redis key of one generation of a segment: the key of keys.py plus ``:{gen}``.

    The generation is always the last ``:``-separated part, so keys stay unambiguous even
    though ids may contain ``:``.
    """
    if segment.attribute is None:
        return keys.item_segment(segment.value, gen)
    return keys.attribute_segment(segment.attribute, segment.value, gen)


@dataclass(frozen=True, slots=True)
class SegmentsConfig:
    """What the fold and the reader need: the feedback rule, the half-life and the caps
    (settings ``segments_*``, built by ``config.segments_config``)."""

    feedback: Feedback
    half_life_s: float
    max_users: int
    max_attributes: int

    def __post_init__(self) -> None:
        if not self.half_life_s > 0:
            raise ValueError("half_life_s must be positive")
        if self.max_users < 1:
            raise ValueError("max_users must be at least 1")

    def weight_of(self, event: Event) -> float:
        """Affinity one event adds (0: none): positive events on an item only."""
        if event.item_id is None:
            return 0.0
        return self.feedback.weight(event)


# --- catalog fields to segments --------------------------------------------------------------


def attribute_value_id(value: object) -> str | None:
    """An attribute value as a segment id, or None when it cannot be one."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = str(int(value)) if value.is_integer() and abs(value) < 2**53 else str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    return text if valid_id(text) else None


def attribute_segments(
    categories: Iterable[object], attributes: Mapping[str, Any], limit: int
) -> tuple[Segment, ...]:
    """The category and attribute segments of one item, deduplicated, at most ``limit``."""
    found: dict[Segment, None] = {}
    for category in categories:
        if len(found) >= limit:
            return tuple(found)
        if valid_id(category):
            found[Segment(CATEGORY, category)] = None  # type: ignore[arg-type]
    for name, raw in attributes.items():
        # ':' in a name would make its key ambiguous (keys.attribute_segment refuses it).
        if not valid_id(name) or ":" in name:
            continue
        for value in raw if isinstance(raw, list) else (raw,):
            if len(found) >= limit:
                return tuple(found)
            text = attribute_value_id(value)
            if text is not None:
                found[Segment(name, text)] = None
    return tuple(found)


# --- the fold ---------------------------------------------------------------------------------

# (segment, generation) -> user_id -> increment of the stored (forward-decayed) affinity
Increments = dict[tuple[Segment, int], dict[str, float]]
# Catalog fields per item: (categories, attributes); items missing here have neither.
Catalog = Mapping[str, tuple[Sequence[Any], Mapping[str, Any]]]


@dataclass(slots=True)
class SegmentDeltas:
    """What one batch changes.

    ``increments`` are added with ZINCRBY (they commute, so any worker may apply them);
    ``blacklisted`` maps (item_id, generation) to the users whose exclusion marker goes into
    that generation of the item's segment. ``entered`` maps (user, event generation ``g``)
    to the segments the batch put the user in, in generations ``g`` and ``g + 1`` (markers
    included): what the user's index of that generation must list. ``forgotten`` holds the
    users a forget erased: out of every segment they entered before the batch.
    """

    increments: Increments = field(default_factory=dict)
    blacklisted: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    entered: dict[tuple[str, int], set[Segment]] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)


def fold(events: Iterable[Event], config: SegmentsConfig, catalog: Catalog) -> SegmentDeltas:
    """Fold a batch of events into per-segment increments and exclusion markers.

    Positive events add to the item's segment and its attribute segments (generations ``g``
    and ``g + 1``). A blacklist anywhere in the batch also withholds the same user's direct
    increments on that item in this batch (markers absorb them in Redis anyway). ``login``,
    ``impression`` and non-positive ratings change nothing. A ``forget`` drops its user's
    earlier events of the batch and lists the user in ``forgotten``.
    """
    events, forgotten = split_forgets(list(events))
    half_life = config.half_life_s
    blocked = {
        (event.item_id, event.user_id)
        for event in events
        if event.event_type == "blacklist" and event.item_id is not None
    }
    increments: dict[tuple[Segment, int], dict[str, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    blacklisted: dict[tuple[str, int], set[str]] = defaultdict(set)
    entered: dict[tuple[str, int], set[Segment]] = defaultdict(set)
    # Per item: its own segment and its attribute segments, computed once per batch.
    targets: dict[str, tuple[Segment, tuple[Segment, ...]]] = {}
    for event in events:
        item_id = event.item_id
        if item_id is None:
            continue
        if event.event_type == "blacklist":
            for target, _ in spread(1.0, event.timestamp_ms, half_life):
                blacklisted[(item_id, target)].add(event.user_id)
            entered[(event.user_id, generation(event.timestamp_ms, half_life))].add(
                item_segment(item_id)
            )
            continue
        weight = config.weight_of(event)
        if weight <= 0:
            continue
        cached = targets.get(item_id)
        if cached is None:
            categories, attributes = catalog.get(item_id, ((), {}))
            cached = (
                item_segment(item_id),
                attribute_segments(categories, attributes, config.max_attributes),
            )
            targets[item_id] = cached
        own, shared = cached
        direct = (item_id, event.user_id) not in blocked
        user = event.user_id
        spread_to = spread(weight, event.timestamp_ms, half_life)
        for target, amount in spread_to:
            if direct:
                increments[(own, target)][user] += amount
            for segment in shared:
                increments[(segment, target)][user] += amount
        joined = entered[(user, spread_to[0][0])]
        if direct:
            joined.add(own)
        joined.update(shared)
    return SegmentDeltas(
        increments={key: dict(users) for key, users in increments.items()},
        blacklisted=dict(blacklisted),
        entered=dict(entered),
        forgotten=forgotten,
    )


def live_generations(now_ms: int, max_future_ms: int, half_life_s: float) -> range:
    """The event generations whose indexes may exist at ``now_ms``: an index of ``g`` lives
    as long as the keys of ``g + 1`` (``expire_at_s``: a half-life into ``g + 2``), so from
    two generations back up to the generation of the latest timestamp an event may have
    (``now_ms + max_future_ms``)."""
    return range(
        generation(now_ms, half_life_s) - 2,
        generation(now_ms + max_future_ms, half_life_s) + 1,
    )


# Index members: the prefix says which kind of segment follows.
_ITEM_MEMBER = "i:"
_ATTRIBUTE_MEMBER = "a:"


def segment_member(segment: Segment) -> str:
    """A segment as a member of a user's index: ``i:{item_id}`` or ``a:{attribute}:{value}``
    (attribute names hold no ``:``, so the first ``:`` after it ends the name)."""
    if segment.attribute is None:
        return _ITEM_MEMBER + segment.value
    return f"{_ATTRIBUTE_MEMBER}{segment.attribute}:{segment.value}"


def member_segment(member: str) -> Segment | None:
    """The segment of an index member (:func:`segment_member`), None for anything else."""
    if member.startswith(_ITEM_MEMBER):
        return item_segment(member[len(_ITEM_MEMBER) :])
    attribute, colon, value = member[len(_ATTRIBUTE_MEMBER) :].partition(":")
    if member.startswith(_ATTRIBUTE_MEMBER) and colon:
        return Segment(attribute, value)
    return None


# --- reading ----------------------------------------------------------------------------------


def rank_item_segment(
    direct: Sequence[tuple[str, float]],
    by_attribute: Sequence[Sequence[tuple[str, float]]],
    n: int,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    """Users most likely to interact with an item, best first, at most ``n``.

    ``direct`` is the item's own segment, ``by_attribute`` its category and attribute
    segments, each as (user_id, affinity). Each list is divided by its highest affinity;
    then ``score = DIRECT_WEIGHT * direct + ATTRIBUTE_WEIGHT * mean(attribute lists)``,
    the mean taken over the non-empty attribute lists (a user missing from a list counts 0
    there). Scores lie in [0, 1.5]. Users in ``exclude`` and non-positive or non-finite
    affinities (exclusion markers) are left out. Ties are broken by user id.
    """
    if n <= 0:
        return []
    blocked = set(exclude)
    scores: dict[str, float] = defaultdict(float)
    direct_part = _normalised(direct, blocked)
    for user, share in direct_part.items():
        scores[user] += DIRECT_WEIGHT * share
    parts = [part for part in (_normalised(rows, blocked) for rows in by_attribute) if part]
    if parts:
        weight = ATTRIBUTE_WEIGHT / len(parts)
        for part in parts:
            for user, share in part.items():
                scores[user] += weight * share
    ranked = sorted(scores.items(), key=lambda entry: (-entry[1], entry[0]))
    return ranked[:n]


def _normalised(rows: Iterable[tuple[str, float]], blocked: Collection[str]) -> dict[str, float]:
    """Usable rows of one list, divided by the list's highest affinity (duplicates summed)."""
    usable: dict[str, float] = defaultdict(float)
    for user, affinity in rows:
        if affinity > 0 and math.isfinite(affinity) and user not in blocked:
            usable[user] += affinity
    if not usable:
        return {}
    top = max(usable.values())
    return {user: affinity / top for user, affinity in usable.items()}
