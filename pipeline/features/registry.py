"""The feature registry: every feature, registered once.

The worker builds the handlers of the agent groups it runs from here, the reader mounts the
routers, ``topics.yaml`` may name these agent groups, and ``pipeline dev`` runs them all.
Adding a feature means writing its package and adding one line to ``FEATURES``.
"""

from __future__ import annotations

from pipeline.core.settings import Settings
from pipeline.core.topics import Topics, load_topics
from pipeline.features import (
    attribution,
    catalog,
    content,
    personal,
    ranking,
    related,
    scenarios,
    segments,
    trending,
    users,
)
from pipeline.features.base import Feature

FEATURES: tuple[Feature, ...] = (
    catalog.FEATURE,
    trending.FEATURE,
    related.FEATURE,
    personal.FEATURE,
    ranking.FEATURE,
    segments.FEATURE,
    scenarios.FEATURE,
    attribution.FEATURE,
    content.FEATURE,
    users.FEATURE,
)

# Names of the agent groups (features with a handler), in registry order.
AGENT_GROUPS: tuple[str, ...] = tuple(f.name for f in FEATURES if f.handler is not None)


def feature(name: str) -> Feature:
    """The feature called ``name`` (KeyError when there is none)."""
    for candidate in FEATURES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def parse_groups(value: str | list[str]) -> list[str]:
    """``--agents`` to a sorted list of known agent groups; ValueError naming the unknown."""
    groups = value.split(",") if isinstance(value, str) else list(value)
    chosen = sorted({g.strip() for g in groups if g.strip()})
    unknown = set(chosen) - set(AGENT_GROUPS)
    if unknown or not chosen:
        raise ValueError(
            f"unknown agent groups {sorted(unknown)}; known: {', '.join(sorted(AGENT_GROUPS))}"
        )
    return chosen


def declared_topics(settings: Settings) -> Topics:
    """``topics.yaml`` as the settings locate and prefix it, checked against the registry."""
    return load_topics(settings.topics_file, AGENT_GROUPS, settings.topic_prefix)
