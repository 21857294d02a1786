"""The Redis key schema, topics.yaml and settings: the public, operator-facing contracts."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.events import EVENT_TYPES, InvalidEvent, valid_id
from pipeline.keys import Keys
from pipeline.settings import (
    DEFAULT_EVENT_WEIGHTS,
    DEFAULT_TRENDING_KINDS,
    DEFAULT_WINDOWS,
    ENV_PREFIX,
    Settings,
    load_settings,
    to_env,
)
from pipeline.topics import AGENT_GROUPS, TopicsFileError, load_topics, parse_topics

ROOT = Path(__file__).resolve().parents[2]
TOPICS_FILE = ROOT / "topics.yaml"
FAST = settings(max_examples=100, deadline=None, database=None)

# --- keys ----------------------------------------------------------------------------------

KEYS = Keys("rec")


def test_key_shapes() -> None:
    assert KEYS.item("sku-1") == "rec:item:sku-1"
    assert KEYS.items() == "rec:items"
    assert KEYS.trending("clicks", "1h", 14756) == "rec:trending:clicks:1h:14756:all"
    assert (
        KEYS.trending("conversions", "7d", 81, "shoes")
        == "rec:trending:conversions:7d:81:cat:shoes"
    )
    assert KEYS.fence("trending", "events.clicks", 3) == "rec:fence:trending:events.clicks:3"
    assert KEYS.fence_prefix("trending") == "rec:fence:trending:"
    assert KEYS.pattern() == "rec:*"
    assert Keys("t1a2b").item("x") == "t1a2b:item:x"


def test_every_key_lies_under_the_pattern() -> None:
    keys = Keys("tenant-7")
    built = [
        keys.item("a"),
        keys.items(),
        keys.trending("clicks", "1h", 1),
        keys.trending("clicks", "1h", 1, "c"),
        keys.fence("catalog", "catalog.items", 0),
    ]
    assert all(key.startswith(keys.pattern()[:-1]) for key in built)
    assert len(set(built)) == len(built)


INVALID_IDS = ["", " ", "a b", " a", "a ", "{a}", "a{b", "b}", "a\tb", "a\nb", 'a"b', "x" * 129]


def key_builders(bad: Any) -> list[Any]:
    builders = [
        lambda: KEYS.item(bad),
        lambda: KEYS.trending(bad, "1h", 1),
        lambda: KEYS.trending("clicks", bad, 1),
        lambda: KEYS.fence(bad, "t", 0),
        lambda: KEYS.fence("trending", bad, 0),
    ]
    if bad is not None:  # no category means the ":all" set
        builders.append(lambda: KEYS.trending("clicks", "1h", 1, bad))
    return builders


@pytest.mark.parametrize("bad", [*INVALID_IDS, None, 5, ["a"]], ids=repr)
def test_keys_reject_invalid_ids(bad: Any) -> None:
    for build in key_builders(bad):
        with pytest.raises(InvalidEvent):
            build()


def test_keys_accept_the_longest_id() -> None:
    longest = "x" * 128
    assert KEYS.item(longest) == f"rec:item:{longest}"
    assert KEYS.trending("clicks", "1h", 1, longest).endswith(f":cat:{longest}")


@FAST
@given(st.text(max_size=130))
def test_item_keys_are_built_only_from_valid_ids(text: str) -> None:
    if valid_id(text):
        assert KEYS.item(text) == "rec:item:" + text
    else:
        with pytest.raises(InvalidEvent):
            KEYS.item(text)


# --- topics --------------------------------------------------------------------------------

ROUTES = {
    "click": "events.clicks",
    "buy": "events.conversions",
    "consume": "events.conversions",
    "basket": "events.conversions",
    "rate": "events.conversions",
    "impression": "events.impressions",
    "login": "events.profile",
    "blacklist": "events.profile",
}


@pytest.mark.parametrize("prefix", ["", "t1a2b3."])
def test_committed_topics_file_routes_every_event_type(prefix: str) -> None:
    topics = load_topics(TOPICS_FILE, prefix)
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
    topics = load_topics(TOPICS_FILE)
    user_keyed = [spec for spec in topics.specs if spec.key == "user_id"]
    # Co-partitioned: one worker owns all of a user's events.
    assert len({spec.partitions for spec in user_keyed}) == 1
    assert topics.catalog.retention_ms == -1
    assert topics.dead_letter.partitions == 1
    assert topics.by_name("events.clicks").configs == {"retention.ms": "604800000"}
    for spec in topics.specs:
        assert set(spec.agents) <= AGENT_GROUPS
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
    topics = parse_topics(minimal_document(), "p.")
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
        parse_topics(edited(edit))
    assert reason in str(caught.value)


@pytest.mark.parametrize("document", [None, [], "topics", {"topics": None}])
def test_parse_topics_rejects_non_documents(document: Any) -> None:
    with pytest.raises(TopicsFileError):
        parse_topics(document)


def test_other_keys_may_use_other_partition_counts() -> None:
    document = edited(lambda d: d["topics"]["items"].update(partitions=16))
    assert parse_topics(document).catalog.partitions == 16


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
        parse_topics(edited(edit))


# --- settings ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from the environment: start every test without PIPELINE_* variables."""
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    yield


def test_default_settings() -> None:
    defaults = load_settings()
    assert defaults.redis_url == "redis://127.0.0.1:6379/0"
    assert defaults.kafka_bootstrap == "127.0.0.1:9092"
    assert defaults.key_prefix == "rec"
    assert defaults.topic_prefix == ""
    assert defaults.topics_file == Path("topics.yaml")
    assert defaults.trending_windows == DEFAULT_WINDOWS
    assert defaults.trending_kinds == DEFAULT_TRENDING_KINDS
    assert defaults.event_weights == DEFAULT_EVENT_WEIGHTS
    assert defaults.positive_rating == 4.0
    assert defaults.reader_host == defaults.collector_host == "127.0.0.1"
    assert defaults.faust_broker == "kafka://127.0.0.1:9092"
    # Each object gets its own mappings, never the module's defaults.
    assert defaults.trending_windows is not DEFAULT_WINDOWS
    assert load_settings().trending_windows is not defaults.trending_windows


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_REDIS_URL", "redis://cache.internal:6380/2")
    monkeypatch.setenv("PIPELINE_TRENDING_WINDOWS", '{"5m": 300, "1h": 3600.5}')
    monkeypatch.setenv("PIPELINE_EVENT_WEIGHTS", json.dumps({"click": 0.5, "buy": 10}))
    monkeypatch.setenv("PIPELINE_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("PIPELINE_BATCH_SIZE", "50")
    monkeypatch.setenv("PIPELINE_KEY_PREFIX", "tenant1")
    monkeypatch.setenv("PIPELINE_TOPICS_FILE", "/etc/pipeline/topics.yaml")
    loaded = load_settings()
    assert loaded.redis_url == "redis://cache.internal:6380/2"
    assert loaded.trending_windows == {"5m": 300.0, "1h": 3600.5}
    assert loaded.event_weights == {"click": 0.5, "buy": 10.0}
    assert "rate" not in loaded.event_weights
    assert loaded.faust_broker == "kafka://k1:9092;kafka://k2:9092"
    assert loaded.batch_size == 50
    assert loaded.key_prefix == "tenant1"
    assert loaded.topics_file == Path("/etc/pipeline/topics.yaml")
    # Keyword overrides win over the environment.
    assert load_settings(redis_url="redis://other:1/0").redis_url == "redis://other:1/0"


INVALID_ENV = [
    ("PIPELINE_TRENDING_WINDOWS", '{"1h": -3600}'),
    ("PIPELINE_TRENDING_WINDOWS", '{"1h": 0}'),
    ("PIPELINE_TRENDING_WINDOWS", "{}"),
    ("PIPELINE_TRENDING_WINDOWS", '{"1h": "an hour"}'),
    ("PIPELINE_TRENDING_WINDOWS", "not json"),
    ("PIPELINE_KEY_PREFIX", "my prefix"),
    ("PIPELINE_KEY_PREFIX", "{rec}"),
    ("PIPELINE_KEY_PREFIX", ""),
    ("PIPELINE_BATCH_SIZE", "0"),
    ("PIPELINE_BATCH_SIZE", "many"),
    ("PIPELINE_READER_PORT", "70000"),
    ("PIPELINE_REDIS_TIMEOUT_S", "0"),
    ("PIPELINE_MAX_FUTURE_SKEW_S", "-1"),
    ("PIPELINE_TRENDING_MAX_ITEMS", "5"),
    ("PIPELINE_COLLECTOR_MAX_BODY_BYTES", "100"),
]


@pytest.mark.parametrize(("name", "value"), INVALID_ENV)
def test_invalid_environment_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    # ValidationError, or pydantic-settings' SettingsError for JSON it cannot decode.
    with pytest.raises(ValueError):
        load_settings()


@pytest.mark.parametrize(
    "overrides",
    [
        {"trending_windows": {"1h": -1.0}},
        {"trending_windows": {"1d": 86400.0, "1h": 0.0}},
        {"key_prefix": "a b"},
        {"key_prefix": "a\tb"},
        {"key_prefix": "a{b}"},
    ],
)
def test_invalid_keyword_values_are_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        load_settings(**overrides)


@pytest.mark.parametrize("text", ['{"1h": NaN}', '{"1h": Infinity}', '{"1h": 1e999}'])
def test_non_finite_half_lives_are_rejected(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("PIPELINE_TRENDING_WINDOWS", text)
    with pytest.raises(ValueError):
        load_settings()


def test_settings_are_frozen() -> None:
    frozen = load_settings()
    with pytest.raises(ValidationError):
        frozen.redis_url = "redis://elsewhere:6379/0"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        frozen.batch_size = 1  # type: ignore[misc]
    assert frozen.redis_url == "redis://127.0.0.1:6379/0"
    # A new object is the way to change one.
    changed = frozen.model_copy(update={"batch_size": 7})
    assert changed.batch_size == 7 and frozen.batch_size == 1000


CUSTOM: dict[str, Any] = {
    "kafka_bootstrap": "k1:9092,k2:9093",
    "redis_url": "redis://:secret@cache:6380/3",
    "topics_file": Path("/srv/conf/topics.yaml"),
    "key_prefix": "t9f8e7",
    "app_id": "t9f8e7",
    "topic_prefix": "t9f8e7.",
    "reader_port": 18000,
    "collector_max_events": 25,
    "redis_timeout_s": 0.25,
    "batch_size": 64,
    "batch_ms": 50,
    "max_future_skew_s": 0.0,
    "trending_windows": {"5m": 300.0, "90d": 7776000.0, "odd": 1.2345678901234567},
    "trending_kinds": {"clicks": ["click"], "money": ["buy", "basket"]},
    "trending_max_items": 50,
    "event_weights": {"click": 0.1, "buy": 1e-7, "rate": 2.5},
    "positive_rating": 3.5,
}


@pytest.mark.parametrize("overrides", [{}, CUSTOM], ids=["defaults", "custom"])
def test_to_env_rebuilds_equal_settings(
    monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any]
) -> None:
    original = load_settings(**overrides)
    env = to_env(original)
    assert set(env) == {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert all(isinstance(value, str) for value in env.values())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rebuilt = load_settings()
    assert rebuilt == original
    assert to_env(rebuilt) == env
