"""Log output (pipeline.core.logs): text or JSON lines, and secrets never shown, in logs,
printed settings or ``pipeline settings``."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from pipeline.core.logs import JsonFormatter, Redactor, logging_config, mask_url
from pipeline.core.settings import ENV_PREFIX, load_settings, secret_values

API_KEY = "k3y-" + "Q" * 40
SASL_PASSWORD = "sasl-s3cret-pass"
REDIS_PASSWORD = "r3dis-pass"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:hunter22@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:hunter22@redis.example:6380/1", "rediss://app:***@redis.example:6380/1"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("redis://app@redis:6379/0", "redis://app@redis:6379/0"),
        ("see redis://u:p%40ss@h/0 and http://x:y@z", "see redis://u:***@h/0 and http://x:***@z"),
    ],
)
def test_url_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def secret_settings():  # type: ignore[no-untyped-def]
    return load_settings(
        redis_url=f"redis://app:{REDIS_PASSWORD}@redis:6379/0",
        write_api_keys=[API_KEY],
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="pipeline",
        kafka_sasl_password=SASL_PASSWORD,
    )


def captured(config: dict, emit) -> str:  # type: ignore[no-untyped-def]
    """What the root logger writes under ``config`` while ``emit(logger)`` runs."""
    stream = io.StringIO()
    config["handlers"]["pipeline"]["stream"] = stream
    saved = logging.root.handlers[:], logging.root.level
    try:
        logging.config.dictConfig(config)
        emit(logging.getLogger("pipeline.test"))
    finally:
        logging.root.handlers[:], _ = saved
        logging.root.setLevel(saved[1])
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_secrets_never_reach_a_log_line(log_format: str) -> None:
    settings = secret_settings()
    config = logging_config(log_format, "INFO", "reader", secret_values(settings))

    def emit(log: logging.Logger) -> None:
        log.info("GET /v1/trending?api_key=%s 200", API_KEY)
        log.warning("connecting to %s as %s", settings.redis_url, SASL_PASSWORD)
        try:
            raise RuntimeError(f"auth failed for {SASL_PASSWORD}")
        except RuntimeError:
            log.exception("broker")

    text = captured(config, emit)
    for secret in (API_KEY, SASL_PASSWORD, REDIS_PASSWORD):
        assert secret not in text
    assert "api_key=***" in text and "redis://app:***@redis:6379/0" in text
    if log_format == "json":
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert [line["level"] for line in lines] == ["INFO", "WARNING", "ERROR"]
        assert all(line["service"] == "reader" for line in lines)
        assert lines[0]["logger"] == "pipeline.test"
        assert lines[0]["time"].endswith("Z")
        assert "RuntimeError: auth failed for ***" in lines[2]["exception"]


def test_the_json_formatter_writes_one_object_per_line() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a\nb %s", ("c",), None)
    line = JsonFormatter("worker", Redactor()).format(record)
    assert "\n" not in line
    assert json.loads(line)["message"] == "a\nb c"


def test_printed_settings_hide_every_secret() -> None:
    settings = secret_settings()
    shown = repr(settings) + str(settings)
    for secret in (API_KEY, SASL_PASSWORD, REDIS_PASSWORD):
        assert secret not in shown
    assert "redis://app:***@redis:6379/0" in shown
    assert set(secret_values(settings)) >= {API_KEY, SASL_PASSWORD, REDIS_PASSWORD}


def test_the_settings_command_shows_no_configured_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.cli import cli

    monkeypatch.setenv("PIPELINE_REDIS_URL", f"redis://:{REDIS_PASSWORD}@redis:6379/0")
    monkeypatch.setenv("PIPELINE_WRITE_API_KEYS", json.dumps([API_KEY]))
    monkeypatch.setenv("PIPELINE_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
    result = CliRunner().invoke(cli, ["settings"])
    assert result.exit_code == 0, result.output
    assert "PIPELINE_LOG_FORMAT=text" in result.output
    for secret in (API_KEY, SASL_PASSWORD, REDIS_PASSWORD):
        assert secret not in result.output


def test_log_format_parses_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().log_format == "text"
    monkeypatch.setenv("PIPELINE_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
    monkeypatch.setenv("PIPELINE_LOG_FORMAT", "xml")
    with pytest.raises(ValidationError):
        load_settings()
    with pytest.raises(ValueError, match="log format"):
        logging_config("xml")
