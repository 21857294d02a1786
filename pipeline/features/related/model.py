"""Related items: co-occurrence within each user's recent history, popularity-discounted.

Relations (Amazon SIMS, Ibexa collaborative filtering):
- ``also_clicked``: items clicked by the same user within ``click_window_s``;
- ``also_bought``: items converted by the same user within ``buy_window_s``;
- ``viewed_then_bought``: item ``a`` clicked, then ``b`` converted within
  ``view_window_s`` ("ultimately bought"); directed from ``a`` to ``b``.

For one user, an item pair counts once while its events are in the user's history, and
pairing looks at event time in both directions (:func:`co_occurrences`): the counts depend on
the events, not on the order their topics are read in. Counts are commutative increments, so
any worker may apply them. Each item keeps at most
``max_neighbours`` partners per relation (the lowest counts are dropped). The popularity
discount is applied when reading: ``score = count / (popularity(b) + 1) ** discount``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# The ranking rules live in core (the stores rank by them too); named here as before.
from pipeline.core.blend import blend_related as blend_related
from pipeline.core.blend import rank_related as rank_related
from pipeline.core.feedback import CLICK, CONVERSION, SIGNALS
from pipeline.features.personal.history import (
    CLICK_ENTRIES,
    CONVERSION_ENTRIES,
    EntryTimes,
    add_entry_time,
    entry_times,
)
from pipeline.features.related.counts import CountLists
from pipeline.features.related.pairing import Pairing

RELATIONS = ("also_clicked", "also_bought", "viewed_then_bought")
# Which popularity signal discounts the partners of each relation.
DISCOUNT_BY = {
    "also_clicked": CLICK,
    "also_bought": CONVERSION,
    "viewed_then_bought": CONVERSION,
}

# (relation, item a, item b, amount): "b is related to a".
Pair = tuple[str, str, str, float]
# relation -> item a -> item b -> amount: pairs summed per list.
PairCounts = dict[str, dict[str, dict[str, float]]]


def pair_counts() -> PairCounts:
    """An empty :data:`PairCounts` whose relations and lists appear as they are used."""
    return defaultdict(lambda: defaultdict(dict))


@dataclass(frozen=True, slots=True)
class RelatedConfig:
    """Pairing windows, the cap of partners per item and relation, and the popularity
    discount exponent (settings ``related_*``)."""

    click_window_s: int
    buy_window_s: int
    view_window_s: int
    max_neighbours: int
    discount: float


class HistoryTimes(Protocol):
    """What pairing an event needs of a user's history: each item's click and conversion
    times (``UserHistory.entry_times``)."""

    def entry_times(self) -> EntryTimes: ...


class History(HistoryTimes, Protocol):
    """What a merge needs of a user's history: also its entries ``(item_id, entry type,
    timestamp_ms)`` in time order (``UserHistory.recent``)."""

    @property
    def recent(self) -> Iterable[tuple[str, str, int]]: ...


class Sighting(Protocol):
    """What pairing needs of an event (a :class:`pipeline.core.events.Event` is one)."""

    @property
    def item_id(self) -> str | None: ...
    @property
    def event_type(self) -> str: ...
    @property
    def timestamp_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    """A history entry seen as the event that made it (for :func:`holding_pairs`)."""

    item_id: str
    event_type: str
    timestamp_ms: int


@dataclass(slots=True)
class _Recent:
    """Entries paired so far (:func:`holding_pairs`), their times kept as they are added."""

    times: EntryTimes

    def entry_times(self) -> EntryTimes:
        return self.times


def co_occurrences(
    history: HistoryTimes, event: Sighting, conversion: bool, config: RelatedConfig
) -> list[Pair]:
    """Pairs that ``event`` adds to those its user's history already holds.

    Pairing looks at event time in both directions, so the counts depend on the user's
    events, not on the order they arrive in (clicks and conversions travel on different
    topics). For one user, an item pair counts once while its events are in the history:

    - ``also_clicked`` {a, b}: clicks of ``a`` and ``b`` at most ``click_window_s`` apart;
    - ``also_bought`` {a, b}: conversions at most ``buy_window_s`` apart;
    - ``viewed_then_bought`` a -> b: a click of ``a`` at ``t1`` and a conversion of ``b`` at
      ``t2`` with ``0 <= t2 - t1 <= view_window_s``.

    The event adds exactly the pairs that hold with it and did not hold without it, so a
    pair counts once whichever of its events arrives first, and ten views of one item are
    one co-occurrence, not ten. Call it before the event joins the history.

    This is the rule; an engine's events are paired by its compiled form
    (``pairing.py``), and logins' corrections (:func:`merge_pairs`) by this one.
    """
    item = event.item_id
    if item is None:
        return []
    is_click = event.event_type == CLICK
    if not is_click and not conversion:
        return []
    clicks, conversions = history.entry_times()
    t = event.timestamp_ms
    pairs: list[Pair] = []
    if is_click:
        window = config.click_window_s * 1000
        own = clicks.get(item)
        for partner, times in _sighted(clicks, item, t - window, t + window):
            if not (own and _close(own, times, window)):
                pairs.append(("also_clicked", item, partner, 1.0))
                pairs.append(("also_clicked", partner, item, 1.0))
        window = config.view_window_s * 1000
        # This click, then a conversion of the partner within the window.
        for partner, times in _sighted(conversions, item, t, t + window):
            if not (own and _directed(own, times, window)):
                pairs.append(("viewed_then_bought", item, partner, 1.0))
    else:
        window = config.buy_window_s * 1000
        own = conversions.get(item)
        for partner, times in _sighted(conversions, item, t - window, t + window):
            if not (own and _close(own, times, window)):
                pairs.append(("also_bought", item, partner, 1.0))
                pairs.append(("also_bought", partner, item, 1.0))
        window = config.view_window_s * 1000
        # A click of the partner, then this conversion within the window.
        for partner, times in _sighted(clicks, item, t - window, t):
            if not (own and _directed(times, own, window)):
                pairs.append(("viewed_then_bought", partner, item, 1.0))
    return pairs


def holding_pairs(
    entries: Iterable[tuple[str, str, int]], config: RelatedConfig
) -> set[tuple[str, str, str]]:
    """The (relation, a, b) pairs that hold in a history's entries (in time order): what
    :func:`co_occurrences` counted for them, one event after the other."""
    return _pairs_gained(({}, {}), entries, config)


def _pairs_gained(
    times: EntryTimes, entries: Iterable[tuple[str, str, int]], config: RelatedConfig
) -> set[tuple[str, str, str]]:
    """The (relation, a, b) pairs that hold once ``entries`` join the history whose entry
    times are ``times`` (changed: the entries join them) and did not hold before: the
    union of what :func:`co_occurrences` counts for each, one after the other."""
    so_far = _Recent(times)
    held: set[tuple[str, str, str]] = set()
    for item_id, entry_type, timestamp_ms in entries:
        if entry_type in CLICK_ENTRIES:
            sighting, conversion = _Entry(item_id, CLICK, timestamp_ms), False
        elif entry_type in CONVERSION_ENTRIES:
            sighting, conversion = _Entry(item_id, CONVERSION, timestamp_ms), True
        else:
            continue
        for relation, a, b, _ in co_occurrences(so_far, sighting, conversion, config):
            held.add((relation, a, b))
        add_entry_time(so_far.times, (item_id, entry_type, timestamp_ms))
    return held


def merge_pairs(user: History, anonymous: History, config: RelatedConfig) -> list[Pair]:
    """What a login changes in the counts when ``anonymous``'s history joins ``user``'s.

    Each id counted the pairs of its own history; the user must end up with the pairs of
    the merged history counted once, as if the events had all come under the user's id
    (which they do when the anonymous events arrive after the login): +1 for each pair that
    holds only in the merged history, -1 for each pair that held in both (counted twice).
    So the counts do not depend on whether the login or the anonymous events came first.

    The pairs the anonymous entries gain on joining the user's history are those of the
    merged history that the user's did not hold; of the anonymous history's own pairs,
    those not gained held in the user's too. So the user's (long) history is paired once
    per anonymous entry, not replayed: a login costs what its anonymous session holds.
    """
    theirs = holding_pairs(anonymous.recent, config)
    # Times of their own, which the anonymous entries join.
    gained = _pairs_gained(entry_times(user.recent), anonymous.recent, config)
    changes = [(r, a, b, 1.0) for r, a, b in gained - theirs]
    changes += [(r, a, b, -1.0) for r, a, b in theirs - gained]
    return sorted(changes)


def _within(times: list[int], low: int, high: int) -> bool:
    """Whether a time of ``times`` (ascending) lies in ``[low, high]``."""
    if not times:
        return False
    last = times[-1]
    if last <= high:
        # The usual case (pairing looks back from the newest event): no search needed.
        return last >= low
    position = bisect_left(times, low)
    return position < len(times) and times[position] <= high


def _sighted(
    times_of: dict[str, list[int]], item: str, low: int, high: int
) -> list[tuple[str, list[int]]]:
    """The partners other than ``item`` with a time (ascending) in ``[low, high]``, with
    their times. Most fail or pass on their first and last time alone."""
    found = []
    for partner, times in times_of.items():
        last = times[-1]
        if last < low or times[0] > high or (last > high and not _within(times, low, high)):
            continue
        if partner != item:
            found.append((partner, times))
    return found


def _close(first: list[int], second: list[int], window: int) -> bool:
    """Whether some time of ``first`` is at most ``window`` from one of ``second``."""
    # Loops, not any() over a generator (a quarter of the pairing's time): called for most
    # partners of every event.
    for t in first:  # noqa: SIM110
        if _within(second, t - window, t + window):
            return True
    return False


def _directed(before: list[int], after: list[int], window: int) -> bool:
    """Whether some ``t1`` of ``before`` and ``t2`` of ``after`` have
    ``0 <= t2 - t1 <= window``."""
    for t in before:  # noqa: SIM110 - as in _close
        if _within(after, t, t + window):
            return True
    return False


class CoOccurrence:
    """In-memory co-occurrence counts (``counts.py``) and popularity (the agent mirrors them
    in Redis)."""

    def __init__(self, config: RelatedConfig, summing: bool = False) -> None:
        """``summing``: the amounts added are also summed for :meth:`take_sums` (what a
        batch writes to the store)."""
        self.config = config
        self.lists = CountLists(RELATIONS, 2 * config.max_neighbours, summing=summing)
        # The rule of co_occurrences, compiled, for an engine's events.
        self.pairing = Pairing(
            self.lists, config.click_window_s, config.buy_window_s, config.view_window_s
        )
        self.popularity: dict[str, dict[str, float]] = {
            signal: defaultdict(float) for signal in SIGNALS
        }

    def apply(self, pairs: Sequence[Pair]) -> None:
        """Add pair counts. A pair not held with a negative amount (a login's correction of a
        pair a trim dropped) takes nothing; one that takes a count to 0 or below removes
        the partner (as the store's zincr_trim). Trimming waits for :meth:`trim_touched`.
        A relation not in :data:`RELATIONS` is a ValueError, with none of the pairs taken."""
        self.lists.add(pairs)

    def take_sums(self) -> PairCounts:
        """What the pairs applied since the last call add, per list (summing on): what a
        batch writes to the store, also the amounts the counts could not take (a
        correction of a pair not held)."""
        return self.lists.take_sums()

    def load(self, relation: str, anchor: str, partners: Mapping[str, float]) -> None:
        """An anchor's list as a store holds it replaces the one in memory."""
        self.lists.load(relation, anchor, partners)

    def partners(self, relation: str, anchor: str) -> dict[str, float]:
        """An anchor's partners with their counts ({} when it has none)."""
        return self.lists.partners(relation, anchor)

    def counts(self) -> dict[str, dict[str, dict[str, float]]]:
        """relation -> anchor -> partner -> count of every list with a partner (a copy)."""
        return self.lists.snapshot()

    def trim_touched(self) -> list[tuple[str, str]]:
        """Cap lists that grew past twice ``max_neighbours`` back to ``max_neighbours``;
        returns the (relation, anchor) lists trimmed.

        The bulk trim amortises the sort; the Redis copy trims with the same rule once per
        batch (``Writes.zincr_trim(keep=cap, trim_above=2 * cap)``). Only lists longer than
        twice the cap are trimmed: a new partner makes one, and so can a list loaded from
        a store whose cap was higher, touched by any pair.
        """
        cap = self.config.max_neighbours
        trimmed = []
        for relation, anchor in self.lists.take_long():
            partners = self.lists.partners(relation, anchor)
            if len(partners) > 2 * cap:
                self.lists.load(relation, anchor, trim(partners, cap))
                trimmed.append((relation, anchor))
        return trimmed

    def count_popularity(self, item_id: str, signal: str, amount: float = 1.0) -> None:
        self.popularity[signal][item_id] += amount

    def related(
        self, item_id: str, relation: str, n: int, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        partners = self.lists.partners(relation, item_id)
        if not partners:
            return []
        return rank_related(
            partners.items(),
            self.popularity[DISCOUNT_BY[relation]],
            self.config.discount,
            n,
            exclude,
        )


def trim(partners: Mapping[str, float], cap: int) -> dict[str, float]:
    """The ``cap`` partners with the highest counts.

    Ties are broken as Redis's ZREMRANGEBYRANK breaks them (the lexicographically smaller
    member goes first), so the agent's Redis copy and this one keep the same partners.
    """
    if cap <= 0:
        return {}
    kept = sorted(partners.items(), key=lambda pair: (pair[1], pair[0]))[-cap:]
    return dict(kept)
