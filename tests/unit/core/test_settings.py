"""Settings (pipeline.core.settings): defaults, the environment, validation and to_env."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.core.settings import (
    DEFAULT_EVENT_WEIGHTS,
    DEFAULT_TRENDING_KINDS,
    DEFAULT_WINDOWS,
    ENV_PREFIX,
    Settings,
    load_settings,
    to_env,
)


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
    assert defaults.demo_page is False
    assert defaults.read_api_keys == defaults.write_api_keys == defaults.cors_origins == []
    assert defaults.require_api_keys is False
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
    monkeypatch.setenv("PIPELINE_DEMO_PAGE", "true")
    monkeypatch.setenv("PIPELINE_KEY_PREFIX", "tenant1")
    monkeypatch.setenv("PIPELINE_TOPICS_FILE", "/etc/pipeline/topics.yaml")
    loaded = load_settings()
    assert loaded.redis_url == "redis://cache.internal:6380/2"
    assert loaded.trending_windows == {"5m": 300.0, "1h": 3600.5}
    assert loaded.event_weights == {"click": 0.5, "buy": 10.0}
    assert "rate" not in loaded.event_weights
    assert loaded.faust_broker == "kafka://k1:9092;kafka://k2:9092"
    assert loaded.batch_size == 50
    assert loaded.demo_page is True
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
    ("PIPELINE_DEMO_PAGE", "sometimes"),
    ("PIPELINE_READ_API_KEYS", "not-a-json-list"),
    ("PIPELINE_WRITE_API_KEYS", '{"k": "v"}'),
    ("PIPELINE_REQUIRE_API_KEYS", "maybe"),
    ("PIPELINE_CORS_ORIGINS", '["https://shop.example/"]'),
    ("PIPELINE_CORS_ORIGINS", '["shop.example"]'),
    ("PIPELINE_MAX_FUTURE_SKEW_S", "-1"),
    ("PIPELINE_TRENDING_MAX_ITEMS", "5"),
    ("PIPELINE_COLLECTOR_MAX_BODY_BYTES", "100"),
    ("PIPELINE_MAX_MESSAGE_BYTES", "10"),
    ("PIPELINE_MAX_ENVELOPE_EVENTS", "0"),
    ("PIPELINE_DEAD_LETTER_MAX_VALUE_BYTES", "65537"),
    ("PIPELINE_DEAD_LETTER_MAX_VALUE_BYTES", "1"),
    ("PIPELINE_WORKER_STOP_TIMEOUT_S", "0"),
    ("PIPELINE_HTTP_BODY_TIMEOUT_S", "-1"),
    # Pairing adds windows to times as 64-bit milliseconds: at most a century.
    ("PIPELINE_RELATED_BUY_WINDOW_S", "9300000000000000"),
    ("PIPELINE_RELATED_CLICK_WINDOW_S", "3153600001"),
    ("PIPELINE_RELATED_VIEW_WINDOW_S", "0"),
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
    assert changed.batch_size == 7 and frozen.batch_size == 5000


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
    "demo_page": True,
    "read_api_keys": ["read-key-0123456789", "second-read-key-xyz"],
    "write_api_keys": ["write-key-0123456789"],
    "require_api_keys": True,
    "cors_origins": ["https://shop.example", "http://127.0.0.1:8000"],
    "batch_size": 64,
    "batch_bytes": 4096,
    "batch_ms": 75,
    "max_future_skew_s": 0.0,
    "trending_windows": {"5m": 300.0, "90d": 7776000.0, "odd": 1.2345678901234567},
    "trending_kinds": {"clicks": ["click"], "money": ["buy", "basket"]},
    "trending_max_items": 50,
    "event_weights": {"click": 0.1, "buy": 1e-7, "rate": 2.5},
    "positive_rating": 3.5,
    "max_message_bytes": 200_000,
    "max_envelope_events": 500,
    "dead_letter_max_value_bytes": 1024,
}


def test_bad_input_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = load_settings()
    assert defaults.max_message_bytes == 1_048_576
    assert defaults.max_envelope_events == 10_000
    assert defaults.dead_letter_max_value_bytes == 4096
    monkeypatch.setenv("PIPELINE_MAX_MESSAGE_BYTES", "65536")
    monkeypatch.setenv("PIPELINE_MAX_ENVELOPE_EVENTS", "100")
    monkeypatch.setenv("PIPELINE_DEAD_LETTER_MAX_VALUE_BYTES", "65536")
    loaded = load_settings()
    assert loaded.max_message_bytes == 65536
    assert loaded.max_envelope_events == 100
    assert loaded.dead_letter_max_value_bytes == 65536


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


@pytest.mark.parametrize(
    "overrides",
    [
        {"trending_windows": {"1 h": 3600}},
        {"trending_windows": {"a:b": 3600}},
        {"trending_kinds": {"clicks": ["klick"]}},
        {"trending_kinds": {"c:d": ["click"]}},
        {"event_weights": {"purchase": 1.0}},
    ],
)
def test_settings_refuse_names_that_would_break_keys_or_count_nothing(overrides: dict):
    with pytest.raises(ValueError):
        load_settings(**overrides)


def test_http_access_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_READ_API_KEYS", '["read-key-0123456789"]')
    monkeypatch.setenv("PIPELINE_WRITE_API_KEYS", '["w1-0123456789abcdef", "w2-0123456789abcdef"]')
    monkeypatch.setenv("PIPELINE_REQUIRE_API_KEYS", "true")
    monkeypatch.setenv("PIPELINE_CORS_ORIGINS", '["https://shop.example", "*"]')
    loaded = load_settings()
    assert loaded.read_api_keys == ["read-key-0123456789"]
    assert loaded.write_api_keys == ["w1-0123456789abcdef", "w2-0123456789abcdef"]
    assert loaded.require_api_keys is True
    assert loaded.cors_origins == ["https://shop.example", "*"]
    # Keys are secrets: printing the settings never shows them.
    assert "read-key-0123456789" not in repr(loaded) and "w1-0123" not in str(loaded)


def test_stop_and_body_timeouts_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().worker_stop_timeout_s == 20.0
    assert load_settings().http_body_timeout_s == 10.0
    monkeypatch.setenv("PIPELINE_WORKER_STOP_TIMEOUT_S", "7.5")
    monkeypatch.setenv("PIPELINE_HTTP_BODY_TIMEOUT_S", "2")
    loaded = load_settings()
    assert loaded.worker_stop_timeout_s == 7.5
    assert loaded.http_body_timeout_s == 2.0


def test_related_lists_kept_by_readers_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().reader_related_cache_ms == 1000
    monkeypatch.setenv("PIPELINE_READER_RELATED_CACHE_MS", "0")
    assert load_settings().reader_related_cache_ms == 0
    monkeypatch.setenv("PIPELINE_READER_RELATED_CACHE_MS", "-1")
    with pytest.raises(ValueError, match="reader_related_cache_ms"):
        load_settings()


def test_trending_lists_kept_by_readers_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().reader_trending_cache_ms == 500
    monkeypatch.setenv("PIPELINE_READER_TRENDING_CACHE_MS", "0")
    assert load_settings().reader_trending_cache_ms == 0
    monkeypatch.setenv("PIPELINE_READER_TRENDING_CACHE_MS", "60001")
    with pytest.raises(ValueError, match="reader_trending_cache_ms"):
        load_settings()


def test_variables_named_like_settings_that_are_none_are_logged_by_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.core.settings import unknown_environment

    monkeypatch.setenv("PIPELINE_EXPLORATION_NEW_DAYS", "3")
    monkeypatch.setenv("PIPELINE_TRENDING_WINDWOS", "secret-looking-value")
    monkeypatch.setenv("PIPELINE_TEST_REDIS_URL", "redis://x")
    monkeypatch.setenv("PIPELINE_NEW_ITEM_DAYS", "2")
    assert unknown_environment(
        {"PIPELINE_NEW_ITEM_DAYS": "2", "pipeline_typo": "1", "OTHER": "1"}
    ) == ["pipeline_typo"]
    with caplog.at_level("WARNING", logger="pipeline.core.settings"):
        settings = load_settings()
    assert settings.new_item_days == 2.0
    text = caplog.text
    assert "PIPELINE_EXPLORATION_NEW_DAYS" in text and "renamed PIPELINE_NEW_ITEM_DAYS" in text
    assert "PIPELINE_TRENDING_WINDWOS" in text and "secret-looking-value" not in text
    assert "PIPELINE_TEST_REDIS_URL" not in text and "PIPELINE_NEW_ITEM_DAYS is" not in text
