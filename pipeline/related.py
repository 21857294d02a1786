"""Related items: co-occurrence within each user's recent history, popularity-discounted.

Relations (DESIGN.md, Amazon SIMS / Ibexa CF):
- ``also_clicked``: items clicked by the same user within ``click_window_ms``;
- ``also_bought``: items converted by the same user within ``buy_window_ms``;
- ``viewed_then_bought``: item ``a`` clicked, then ``b`` converted within
  ``view_window_ms`` ("ultimately bought"); directed from ``a`` to ``b``.

Counts are commutative increments, so any worker may apply them. Each item keeps at most
``max_neighbours`` partners per relation (the lowest counts are dropped). The popularity
discount is applied when reading: ``score = count / (popularity(b) + 1) ** discount``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.events import Event
from pipeline.history import UserHistory

RELATIONS = ("also_clicked", "also_bought", "viewed_then_bought")
# Which popularity counter discounts the partners of each relation.
DISCOUNT_BY = {
    "also_clicked": "click",
    "also_bought": "conversion",
    "viewed_then_bought": "conversion",
}
CLICK_TYPES = frozenset({"click"})
CONVERSION_TYPES = frozenset({"buy", "consume", "basket", "rate"})

# (relation, item a, item b, amount): "b is related to a".
Pair = tuple[str, str, str, float]


@dataclass(frozen=True, slots=True)
class RelatedConfig:
    click_window_ms: int = 2 * 3_600_000
    buy_window_ms: int = 30 * 86_400_000
    view_window_ms: int = 86_400_000
    partners: int = 20
    max_neighbours: int = 200
    discount: float = 0.5


def co_occurrences(
    history: UserHistory, event: Event, conversion: bool, config: RelatedConfig
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
        recent = history.items_since(event.timestamp_ms - config.click_window_ms, CLICK_TYPES)
        if item not in recent:
            for partner in recent[: config.partners]:
                pairs.append(("also_clicked", item, partner, 1.0))
                pairs.append(("also_clicked", partner, item, 1.0))
    elif conversion:
        bought = history.items_since(event.timestamp_ms - config.buy_window_ms, CONVERSION_TYPES)
        if item not in bought:
            for partner in bought[: config.partners]:
                pairs.append(("also_bought", item, partner, 1.0))
                pairs.append(("also_bought", partner, item, 1.0))
            viewed = history.items_since(event.timestamp_ms - config.view_window_ms, CLICK_TYPES)
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

    def __init__(self, config: RelatedConfig | None = None) -> None:
        self.config = config or RelatedConfig()
        self.counts: dict[str, dict[str, dict[str, float]]] = {
            r: defaultdict(dict) for r in RELATIONS
        }
        self.popularity: dict[str, dict[str, float]] = {
            "click": defaultdict(float),
            "conversion": defaultdict(float),
        }
        self._touched: set[tuple[str, str]] = set()

    def apply(self, pairs: Iterable[Pair]) -> None:
        """Add pair counts; trimming waits for :meth:`trim_touched`."""
        for relation, a, b, amount in pairs:
            partners = self.counts[relation][a]
            partners[b] = partners.get(b, 0.0) + amount
            self._touched.add((relation, a))

    def trim_touched(self) -> None:
        """Cap lists that grew past twice ``max_neighbours`` back to ``max_neighbours``.

        The bulk trim amortises the sort; the Redis copy trims with the same rule once per
        batch (``queue_zincr_trim(keep=cap, trim_above=2 * cap)``).
        """
        cap = self.config.max_neighbours
        for relation, a in self._touched:
            partners = self.counts[relation][a]
            if len(partners) > 2 * cap:
                self.counts[relation][a] = trim(partners, cap)
        self._touched.clear()

    def count_popularity(self, item_id: str, kind: str, amount: float = 1.0) -> None:
        self.popularity[kind][item_id] += amount

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
