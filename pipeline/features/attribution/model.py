"""Attribution: impressions, clicks and conversions counted per scenario, stage and item, from
the ``recommendation_id`` events carry back (pure; the agent stores the counts).

A response's id is ``{scenario}:{token}``; each of its items carries
``{scenario}:{token}:{stage}``, so an event sent with the item's id is credited to the stage
that served it, and one sent with the response's id to the scenario (stage ``unknown``).

- an ``impression`` counts one impression per item shown;
- a ``click`` counts a click, and is remembered per user and item for
  ``attribution_window_s``;
- a conversion (the feedback rule) counts a conversion; one without a ``recommendation_id``
  is credited to the remembered click of the same user and item, when there is one.

Counts go into hourly buckets of the event's own time, so a replayed log counts the same.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from pipeline.core.events import Event
from pipeline.core.feedback import Feedback

SERVED = "served"
IMPRESSIONS = "impressions"
CLICKS = "clicks"
CONVERSIONS = "conversions"
METRICS = (SERVED, IMPRESSIONS, CLICKS, CONVERSIONS)
# The stage of an event sent with a response's id rather than an item's.
UNKNOWN_STAGE = "unknown"
# Totals of a scenario are stored under this stage name (stage names cannot contain '*').
ALL_STAGES = "*"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_RECOMMENDATION_ID = re.compile(
    r"^(?P<scenario>[A-Za-z0-9_-]{1,64}):(?P<token>[0-9a-f]{16})(?::(?P<stage>[A-Za-z0-9_-]{1,64}))?$"
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a recommended item came from: its scenario and stage."""

    scenario: str
    stage: str


def parse_recommendation_id(value: str | None) -> Origin | None:
    """The scenario and stage a ``recommendation_id`` names; None for anything else (ids
    the website made up are not counted)."""
    if not value:
        return None
    match = _RECOMMENDATION_ID.match(value)
    if match is None:
        return None
    return Origin(match["scenario"], match["stage"] or UNKNOWN_STAGE)


def stat_field(metric: str, stage: str) -> str:
    """Field of an hourly hash: ``clicks`` (all stages) or ``clicks:personal``."""
    return metric if stage == ALL_STAGES else f"{metric}:{stage}"


@dataclass
class Counts:
    """What a batch adds: per (scenario, hour) the fields of the hourly hash; per
    (scenario, day, metric) the items' counts; and the clicks to remember per user."""

    hourly: dict[tuple[str, int], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    items: dict[tuple[str, int, str], dict[str, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    remembered: dict[str, dict[str, tuple[str, int]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add(self, origin: Origin, metric: str, timestamp_ms: int, items: Iterable[str]) -> None:
        listed = list(items)
        hour = timestamp_ms // HOUR_MS
        fields = self.hourly[(origin.scenario, hour)]
        fields[stat_field(metric, ALL_STAGES)] += len(listed)
        fields[stat_field(metric, origin.stage)] += len(listed)
        per_item = self.items[(origin.scenario, timestamp_ms // DAY_MS, metric)]
        for item_id in listed:
            per_item[item_id] += 1


def count(
    events: Iterable[Event],
    feedback: Feedback,
    remembered: Mapping[str, Mapping[str, tuple[str, int]]],
    window_ms: int,
) -> Counts:
    """The counts of a batch, in event order. ``remembered`` holds, per user, the clicks
    already stored (item -> (recommendation_id, timestamp_ms)); clicks of the batch join them
    for its later conversions."""
    counts = Counts()
    for event in events:
        origin = parse_recommendation_id(event.recommendation_id)
        if event.event_type == "impression":
            if origin is not None:
                counts.add(origin, IMPRESSIONS, event.timestamp_ms, event.items)
            continue
        item_id = event.item_id
        if item_id is None:
            continue
        if event.event_type == "click":
            if origin is not None:
                counts.add(origin, CLICKS, event.timestamp_ms, [item_id])
                assert event.recommendation_id is not None
                clicked = (event.recommendation_id, event.timestamp_ms)
                counts.remembered[event.user_id][item_id] = clicked
            continue
        if not feedback.is_conversion(event):
            continue
        if origin is None:
            clicked_before = counts.remembered.get(event.user_id, {}).get(
                item_id
            ) or remembered.get(event.user_id, {}).get(item_id)
            if (
                clicked_before is not None
                and 0 <= event.timestamp_ms - clicked_before[1] <= window_ms
            ):
                origin = parse_recommendation_id(clicked_before[0])
        if origin is not None:
            counts.add(origin, CONVERSIONS, event.timestamp_ms, [item_id])
    return counts


def rates(totals: Mapping[str, float]) -> dict[str, float | int | str | None]:
    """Counts with click-through and conversion rates. Rates are over impressions when the
    website reports them, else over the items served (``basis`` says which)."""
    out: dict[str, float | int | str | None] = {m: int(totals.get(m, 0)) for m in METRICS}
    impressions = totals.get(IMPRESSIONS, 0)
    basis = IMPRESSIONS if impressions > 0 else SERVED
    shown = totals.get(basis, 0)
    out["basis"] = basis
    out["click_through_rate"] = totals.get(CLICKS, 0) / shown if shown else None
    out["conversion_rate"] = totals.get(CONVERSIONS, 0) / shown if shown else None
    return out
