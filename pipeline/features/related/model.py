"""Related items: co-occurrence within each user's recent history, popularity-discounted.

Relations (Amazon SIMS, Ibexa collaborative filtering):
- ``also_clicked``: items clicked by the same user within ``click_window_s``;
- ``also_bought``: items converted by the same user within ``buy_window_s``;
- ``viewed_then_bought``: item ``a`` clicked, then ``b`` converted within
  ``view_window_s`` ("ultimately bought"); directed from ``a`` to ``b``.

Counts are commutative increments, so any worker may apply them. Each item keeps at most
``max_neighbours`` partners per relation (the lowest counts are dropped). The popularity
discount is applied when reading: ``score = count / (popularity(b) + 1) ** discount``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from pipeline.core.events import Event
from pipeline.core.feedback import CLICK, CONVERSION, SIGNALS

RELATIONS = ("also_clicked", "also_bought", "viewed_then_bought")
# Which popularity signal discounts the partners of each relation.
DISCOUNT_BY = {
    "also_clicked": CLICK,
    "also_bought": CONVERSION,
    "viewed_then_bought": CONVERSION,
}

# (relation, item a, item b, amount): "b is related to a".
Pair = tuple[str, str, str, float]


@dataclass(frozen=True, slots=True)
class RelatedConfig:
    """Pairing windows, how many recent items an event pairs with, the cap of partners per
    item and relation, and the popularity discount exponent (settings ``related_*``)."""

    click_window_s: int
    buy_window_s: int
    view_window_s: int
    partners: int
    max_neighbours: int
    discount: float


class History(Protocol):
    """What pairing needs of a user's history: distinct items, newest first."""

    def clicked_since(self, since_ms: int) -> list[str]: ...

    def converted_since(self, since_ms: int) -> list[str]: ...


def co_occurrences(
    history: History, event: Event, conversion: bool, config: RelatedConfig
) -> list[Pair]:
    """Pairs that ``event`` creates with the user's history *before* it.

    A repeat of an item already in the relevant window adds nothing: ten views of one item
    are one co-occurrence, not ten.
    """
    item = event.item_id
    if item is None:
        return []
    pairs: list[Pair] = []
    if event.event_type == "click":
        recent = history.clicked_since(event.timestamp_ms - config.click_window_s * 1000)
        if item not in recent:
            for partner in recent[: config.partners]:
                pairs.append(("also_clicked", item, partner, 1.0))
                pairs.append(("also_clicked", partner, item, 1.0))
    elif conversion:
        bought = history.converted_since(event.timestamp_ms - config.buy_window_s * 1000)
        if item not in bought:
            for partner in bought[: config.partners]:
                pairs.append(("also_bought", item, partner, 1.0))
                pairs.append(("also_bought", partner, item, 1.0))
            viewed = history.clicked_since(event.timestamp_ms - config.view_window_s * 1000)
            for partner in viewed[: config.partners]:
                if partner != item:
                    pairs.append(("viewed_then_bought", partner, item, 1.0))
    return pairs


def rank_related(
    counts: Iterable[tuple[str, float]],
    popularity: Mapping[str, float],
    discount: float,
    n: int,
    exclude: Iterable[str] = (),
) -> list[tuple[str, float]]:
    """Partners ordered by popularity-discounted count; ties broken by item id."""
    excluded = set(exclude)
    scored = [
        (partner, count / (popularity.get(partner, 0.0) + 1.0) ** discount)
        for partner, count in counts
        if partner not in excluded
    ]
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored[:n]


def blend_related(
    lists: Mapping[str, list[tuple[str, float]]], n: int
) -> list[tuple[str, float, str]]:
    """Merge ranked lists of several relations: (partner, score, relation label).

    One relation: its own scores. Several: each list is scaled to its best score and the
    scaled scores add up, so an item related in several ways ranks high; label "blend".
    """
    present = {name: ranked for name, ranked in lists.items() if ranked}
    if len(lists) == 1:
        ((name, ranked),) = lists.items()
        return [(partner, score, name) for partner, score in ranked[:n]]
    blended: dict[str, float] = defaultdict(float)
    for ranked in present.values():
        top = ranked[0][1] if ranked[0][1] > 0 else 1.0
        for partner, score in ranked:
            blended[partner] += score / top
    ordered = sorted(blended.items(), key=lambda pair: (-pair[1], pair[0]))[:n]
    return [(partner, score, "blend") for partner, score in ordered]


class CoOccurrence:
    """In-memory co-occurrence counts and popularity (the agent mirrors them in Redis)."""

    def __init__(self, config: RelatedConfig) -> None:
        self.config = config
        self.counts: dict[str, dict[str, dict[str, float]]] = {
            r: defaultdict(dict) for r in RELATIONS
        }
        self.popularity: dict[str, dict[str, float]] = {
            signal: defaultdict(float) for signal in SIGNALS
        }
        self._touched: set[tuple[str, str]] = set()

    def apply(self, pairs: Iterable[Pair]) -> None:
        """Add pair counts; trimming waits for :meth:`trim_touched`."""
        for relation, a, b, amount in pairs:
            partners = self.counts[relation][a]
            partners[b] = partners.get(b, 0.0) + amount
            self._touched.add((relation, a))

    def trim_touched(self) -> list[tuple[str, str]]:
        """Cap lists that grew past twice ``max_neighbours`` back to ``max_neighbours``;
        returns the (relation, anchor) lists trimmed.

        The bulk trim amortises the sort; the Redis copy trims with the same rule once per
        batch (``Writes.zincr_trim(keep=cap, trim_above=2 * cap)``).
        """
        cap = self.config.max_neighbours
        trimmed = []
        for relation, a in self._touched:
            partners = self.counts[relation][a]
            if len(partners) > 2 * cap:
                self.counts[relation][a] = trim(partners, cap)
                trimmed.append((relation, a))
        self._touched.clear()
        return trimmed

    def count_popularity(self, item_id: str, signal: str, amount: float = 1.0) -> None:
        self.popularity[signal][item_id] += amount

    def related(
        self, item_id: str, relation: str, n: int, exclude: Iterable[str] = ()
    ) -> list[tuple[str, float]]:
        partners = self.counts[relation].get(item_id)
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
