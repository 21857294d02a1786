"""topics.yaml (pipeline.core.topics): the committed file routes every event type, and the
loader refuses every document that would not describe a usable set of topics."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pipeline.core.events import EVENT_TYPES
from pipeline.core.topics import TopicsFileError, load_topics, parse_topics
from pipeline.features.registry import AGENT_GROUPS

ROOT = Path(__file__).resolve().parents[3]
TOPICS_FILE = ROOT / "topics.yaml"

ROUTES = {
    "click": "events.clicks",
    "buy": "events.conversions",
    "consume": "events.conversions",
    "basket": "events.conversions",
    "rate": "events.conversions",
    "impression": "events.impressions",
    "login": "events.profile",
    "blacklist": "events.profile",
    "forget": "events.profile",
}


@pytest.mark.parametrize("prefix", ["", "t1a2b3."])
def test_committed_topics_file_routes_every_event_type(prefix: str) -> None:
    topics = load_topics(TOPICS_FILE, AGENT_GROUPS, prefix)
    assert set(ROUTES) == EVENT_TYPES
    for event_type, name in ROUTES.items():
        assert topics.for_event_type(event_type) == prefix + name
        spec = topics.by_name(prefix + name)
        assert event_type in spec.event_types
        assert spec.key == "user_id"
    assert topics.dead_letter.name == prefix + "events.deadletter"
    assert topics.dead_letter.dead_letter
    assert topics.catalog.name == prefix + "catalog.items"
    assert topics.catalog.key == "item_id"
    assert all(spec.name.startswith(prefix) for spec in topics.specs)
    assert [spec.name for spec in topics.for_agent("catalog")] == [prefix + "catalog.items"]
    assert {spec.name for spec in topics.for_agent("trending")} == {
        prefix + "events.clicks",
        prefix + "events.conversions",
    }
    with pytest.raises(KeyError):
        topics.for_event_type("view")
    with pytest.raises(KeyError):
        topics.by_name("events.clicks" if prefix else "nope")


def test_committed_topics_file_settings() -> None:
    topics = load_topics(TOPICS_FILE, AGENT_GROUPS)
    user_keyed = [spec for spec in topics.specs if spec.key == "user_id"]
    # Co-partitioned: one worker owns all of a user's events.
    assert len({spec.partitions for spec in user_keyed}) == 1
    assert topics.catalog.retention_ms == -1
    assert topics.dead_letter.partitions == 1
    assert topics.by_name("events.clicks").configs == {"retention.ms": "604800000"}
    for spec in topics.specs:
        assert set(spec.agents) <= set(AGENT_GROUPS)
        assert spec.partitions >= 1 and spec.replication >= 1


def minimal_document() -> dict[str, Any]:
    return {
        "defaults": {"partitions": 4, "replication": 1, "retention_ms": 1000},
        "topics": {
            "events.a": {"key": "user_id", "event_types": ["click", "buy"], "agents": ["trending"]},
            "events.b": {
                "key": "user_id",
                "event_types": sorted(EVENT_TYPES - {"click", "buy"}),
            },
            "items": {"key": "item_id", "agents": ["catalog"], "partitions": 2},
            "dead": {"key": "source_key", "dead_letter": True, "partitions": 1},
        },
    }


def test_minimal_document_parses() -> None:
    topics = parse_topics(minimal_document(), AGENT_GROUPS, "p.")
    assert topics.for_event_type("click") == "p.events.a"
    assert topics.for_event_type("login") == "p.events.b"
    assert topics.dead_letter.name == "p.dead"
    assert topics.catalog.name == "p.items"
    assert topics.by_name("p.events.a").partitions == 4
    assert topics.by_name("p.events.a").retention_ms == 1000
    assert topics.by_name("p.items").partitions == 2
    assert topics.by_name("p.events.b").agents == ()


def edited(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(minimal_document())
    edit(document)
    return document


REJECTED_TOPICS: list[tuple[str, Any, str]] = [
    (
        "unknown topic key",
        lambda d: d["topics"]["events.a"].update(partiton=8),
        "unknown keys ['partiton']",
    ),
    (
        "event type routed twice",
        lambda d: d["topics"]["events.b"]["event_types"].append("click"),
        "routed to two topics: ['click']",
    ),
    (
        "event type routed twice across a new topic",
        lambda d: d["topics"].update({"events.c": {"event_types": ["login"]}}),
        "routed to two topics: ['login']",
    ),
    (
        "event type routed nowhere",
        lambda d: d["topics"]["events.b"]["event_types"].remove("login"),
        "routed nowhere: ['login']",
    ),
    (
        "unknown event type",
        lambda d: d["topics"]["events.a"]["event_types"].append("view"),
        "unknown event types ['view']",
    ),
    ("no dead-letter topic", lambda d: d["topics"].pop("dead"), "marked dead_letter"),
    (
        "two dead-letter topics",
        lambda d: d["topics"]["events.b"].update(dead_letter=True),
        "marked dead_letter",
    ),
    ("no catalog topic", lambda d: d["topics"].pop("items"), "key: item_id"),
    (
        "two catalog topics",
        lambda d: d["topics"].update({"items2": {"key": "item_id"}}),
        "key: item_id",
    ),
    (
        "unknown agent group",
        lambda d: d["topics"]["events.a"]["agents"].append("no-such-agent"),
        "unknown agent groups ['no-such-agent']",
    ),
    (
        "user_id topics with different partition counts",
        lambda d: d["topics"]["events.b"].update(partitions=8),
        "same number of partitions",
    ),
    ("zero partitions", lambda d: d["defaults"].update(partitions=0), ">= 1"),
    ("zero replication", lambda d: d["topics"]["dead"].update(replication=0), ">= 1"),
    ("partitions not a number", lambda d: d["topics"]["items"].update(partitions="many"), "items"),
    ("no topics mapping", lambda d: d.pop("topics"), "'topics' mapping"),
    ("topics is a list", lambda d: d.update(topics=["events.a"]), "'topics' mapping"),
]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [case[1:] for case in REJECTED_TOPICS],
    ids=[case[0] for case in REJECTED_TOPICS],
)
def test_parse_topics_rejects(edit: Any, reason: str) -> None:
    with pytest.raises(TopicsFileError) as caught:
        parse_topics(edited(edit), AGENT_GROUPS)
    assert reason in str(caught.value)


@pytest.mark.parametrize("document", [None, [], "topics", {"topics": None}])
def test_parse_topics_rejects_non_documents(document: Any) -> None:
    with pytest.raises(TopicsFileError):
        parse_topics(document, AGENT_GROUPS)


def test_other_keys_may_use_other_partition_counts() -> None:
    document = edited(lambda d: d["topics"]["items"].update(partitions=16))
    assert parse_topics(document, AGENT_GROUPS).catalog.partitions == 16


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["defaults"].update(partitons=8),
        lambda d: d["topics"].update({"events.c": 5}),
        lambda d: d.update(defaults=["partitions", 4]),
    ],
    ids=["typo in defaults", "topic entry is a number", "defaults is a list"],
)
def test_parse_topics_rejects_malformed_defaults_and_entries(edit: Any) -> None:
    with pytest.raises(TopicsFileError):
        parse_topics(edited(edit), AGENT_GROUPS)
