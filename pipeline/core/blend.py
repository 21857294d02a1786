"""Ranking partners by a discounted score, and blending ranked lists: the rule of related
items (``pipeline.features.related``), kept here because the stores apply it too (the
Redis store in a server-side script, :meth:`pipeline.store.base.Reads.related_blend`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping


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
