"""Shared pieces of the ranking tests: impressions and clicks as the click model sees them."""

from __future__ import annotations

from pipeline.core.events import Event, event_from_dict

NOW = 1_700_000_000_000


def impression(user: str, items: list[str], context: dict | None = None, n: int = 0) -> Event:
    return event_from_dict(
        {
            "event_id": f"imp-{user}-{n}",
            "type": "impression",
            "user_id": user,
            "items": items,
            "timestamp": NOW,
            "context": context or {},
        }
    )


def click(
    user: str, item: str, position: int | None, context: dict | None = None, n: int = 0
) -> Event:
    context = dict(context or {})
    if position is not None:
        context["position"] = position
    return event_from_dict(
        {
            "event_id": f"clk-{user}-{n}",
            "type": "click",
            "user_id": user,
            "item_id": item,
            "timestamp": NOW,
            "context": context,
        }
    )
