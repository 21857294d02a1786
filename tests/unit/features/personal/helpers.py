"""Shared pieces of the personal tests: events, configurations built from settings, and the
feedback rule with the shipped weights."""

from __future__ import annotations

from typing import Any

from pipeline.core.events import Event, event_from_dict
from pipeline.core.feedback import Feedback
from pipeline.core.items import Item
from pipeline.core.settings import DEFAULT_EVENT_WEIGHTS, load_settings
from pipeline.features.content.config import content_config
from pipeline.features.content.engine import ContentEngine
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine, PersonalConfig
from pipeline.features.personal.history import HistoryLimits

T0 = 1_767_225_600_000
USERS = [f"user-{u}" for u in range(6)]
ITEMS = [f"item-{i}" for i in range(12)]

# The shipped history limits: 50 entries, 30 days, 1000 exclusions.
LIMITS = HistoryLimits(length=50, max_age_s=30 * 86_400, max_excluded=1000)
# The shipped feedback rule: the default weights, ratings count from 4.0 up.
FEEDBACK = Feedback(weights=DEFAULT_EVENT_WEIGHTS, positive_rating=4.0)


def from_settings(**overrides: Any) -> PersonalConfig:
    """The engine's configuration as the agent builds it, with setting ``overrides``."""
    return personal_config(load_settings(**overrides))


def is_conversion(event: Event) -> bool:
    return FEEDBACK.is_conversion(event)


def make_event(kind: str, user: str, item: str | None = None, t: int = 0, **fields: Any) -> Event:
    raw = {"event_id": f"e{t}", "type": kind, "user_id": user, "timestamp": T0 + t, **fields}
    if item is not None:
        raw["item_id"] = item
    return event_from_dict(raw)


def event_at(kind: str, user: str, item: str | None, t: int, **extra: Any) -> Event:
    """An event at absolute time ``t`` whose id names what it is."""
    body = {"event_id": f"{kind}-{user}-{item}-{t}", "type": kind, "user_id": user, "timestamp": t}
    if item is not None:
        body["item_id"] = item
    return event_from_dict({**body, **extra})


def kitchen_and_garden(**overrides: Any) -> tuple[Engine, ContentEngine]:
    """An engine configured with setting ``overrides`` that was given the content vectors
    of fifteen kitchen items (``k0``..``k14``) and fifteen garden items (``g0``..), and the
    content engine that made them (for more items of the same vocabulary)."""
    settings = load_settings(**overrides)
    engine = Engine(personal_config(settings))
    content = ContentEngine(content_config(settings))
    words = {"k": "kitchen knife steel chef", "g": "garden hose green water"}
    items = [Item(f"{g}{n}", (), title=f"{w} {n}") for g, w in words.items() for n in range(15)]
    engine.set_content(content.apply(items).vectors)
    return engine, content
