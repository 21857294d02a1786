"""Topics as declared in ``topics.yaml``: load, validate and route.

The names of the agent groups a topic may list come from the caller (the feature registry,
``pipeline.features``), so this module knows no feature. Creating the topics on a broker is
``pipeline.stream.kafka.apply_topics``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.events import EVENT_TYPES

_TOPIC_KEYS = {
    "key",
    "event_types",
    "agents",
    "partitions",
    "replication",
    "retention_ms",
    "dead_letter",
}


class TopicsFileError(ValueError):
    """``topics.yaml`` does not describe a usable set of topics."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    retention_ms: int
    key: str
    event_types: tuple[str, ...] = ()
    agents: tuple[str, ...] = ()
    dead_letter: bool = False

    @property
    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms)}


@dataclass(frozen=True, slots=True)
class Topics:
    """All topics of one deployment (names already carry the prefix)."""

    specs: tuple[TopicSpec, ...]
    _route: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        for spec in self.specs:
            for event_type in spec.event_types:
                self._route[event_type] = spec.name

    def by_name(self, name: str) -> TopicSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def for_event_type(self, event_type: str) -> str:
        """Topic that events of ``event_type`` are published to."""
        return self._route[event_type]

    def for_agent(self, agent: str) -> list[TopicSpec]:
        return [spec for spec in self.specs if agent in spec.agents]

    @property
    def dead_letter(self) -> TopicSpec:
        return next(spec for spec in self.specs if spec.dead_letter)

    @property
    def catalog(self) -> TopicSpec:
        return next(spec for spec in self.specs if spec.key == "item_id")


def parse_topics(document: Any, agent_groups: Collection[str], prefix: str = "") -> Topics:
    """Validate a decoded ``topics.yaml``; raises :class:`TopicsFileError` with the reason.

    ``agent_groups`` are the group names a topic may list under ``agents``.
    """
    if not isinstance(document, dict) or not isinstance(document.get("topics"), dict):
        raise TopicsFileError("topics.yaml needs a 'topics' mapping")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise TopicsFileError("'defaults' must be a mapping")
    unknown_defaults = set(defaults) - _TOPIC_KEYS
    if unknown_defaults:
        raise TopicsFileError(f"defaults: unknown keys {sorted(unknown_defaults)}")
    specs = []
    for name, raw in document["topics"].items():
        raw = raw or {}
        if not isinstance(raw, dict):
            raise TopicsFileError(f"topic {name}: must be a mapping of settings")
        if not isinstance(raw.get("dead_letter", False), bool):
            raise TopicsFileError(f"topic {name}: dead_letter must be true or false")
        unknown = set(raw) - _TOPIC_KEYS
        if unknown:
            raise TopicsFileError(f"topic {name}: unknown keys {sorted(unknown)}")
        merged = {**defaults, **raw}
        try:
            spec = TopicSpec(
                name=prefix + str(name),
                partitions=int(merged.get("partitions", 1)),
                replication=int(merged.get("replication", 1)),
                retention_ms=int(merged.get("retention_ms", -1)),
                key=str(merged.get("key", "user_id")),
                event_types=tuple(merged.get("event_types") or ()),
                agents=tuple(merged.get("agents") or ()),
                dead_letter=bool(merged.get("dead_letter", False)),
            )
        except (TypeError, ValueError) as exc:
            raise TopicsFileError(f"topic {name}: {exc}") from None
        if spec.partitions < 1 or spec.replication < 1:
            raise TopicsFileError(f"topic {name}: partitions and replication must be >= 1")
        bad_types = set(spec.event_types) - EVENT_TYPES
        if bad_types:
            raise TopicsFileError(f"topic {name}: unknown event types {sorted(bad_types)}")
        bad_agents = set(spec.agents) - set(agent_groups)
        if bad_agents:
            raise TopicsFileError(f"topic {name}: unknown agent groups {sorted(bad_agents)}")
        specs.append(spec)
    routed = [t for spec in specs for t in spec.event_types]
    duplicated = {t for t in routed if routed.count(t) > 1}
    if duplicated:
        raise TopicsFileError(f"event types routed to two topics: {sorted(duplicated)}")
    missing = EVENT_TYPES - set(routed)
    if missing:
        raise TopicsFileError(f"event types routed nowhere: {sorted(missing)}")
    if sum(spec.dead_letter for spec in specs) != 1:
        raise TopicsFileError("exactly one topic must be marked dead_letter: true")
    if sum(spec.key == "item_id" for spec in specs) != 1:
        raise TopicsFileError("exactly one topic (the catalog) must have key: item_id")
    event_partitions = {spec.partitions for spec in specs if spec.key == "user_id"}
    if len(event_partitions) > 1:
        # Co-partitioning: one worker must own all of a user's events across topics.
        raise TopicsFileError("all topics keyed by user_id need the same number of partitions")
    return Topics(tuple(specs))


def load_topics(path: Path | str, agent_groups: Collection[str], prefix: str = "") -> Topics:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except FileNotFoundError:
        raise TopicsFileError(
            f"topics file {path} not found: run from the repository root or set PIPELINE_TOPICS_FILE"
        ) from None
    except yaml.YAMLError as exc:
        raise TopicsFileError(f"{path} is not valid YAML: {exc}") from None
    return parse_topics(document, agent_groups, prefix)
