"""Listing dead letters (pipeline.tools.deadletters) without a broker: --since, filters and
the one-line format; the command's help and argument errors (pipeline.cli.deadletters)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.deadletters import build_dead_letter
from pipeline.core.events import Rejection
from pipeline.tools.deadletters import REASONS_SHOWN, DeadLetter, parse_since

NOW = 1_764_746_435_000  # 2025-12-03T07:20:35Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - 90_000),
        ("15m", NOW - 900_000),
        ("2h", NOW - 7_200_000),
        ("1.5h", NOW - 5_400_000),
        ("7d", NOW - 7 * 86_400_000),
        ("1w", NOW - 7 * 86_400_000),
        ("2025-12-03T07:00:00Z", NOW - 20 * 60_000 - 35_000),
        ("2025-12-03T08:00:00+01:00", NOW - 20 * 60_000 - 35_000),
        ("2025-12-03", int(datetime(2025, 12, 3, tzinfo=UTC).timestamp() * 1000)),
    ],
)
def test_since_takes_durations_and_iso_times(text: str, expected: int) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15", "-5m", "2h ago", ""])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_since(text, NOW)


def letter(rejections: list[Rejection], value: bytes | None = b"{}") -> DeadLetter:
    raw = build_dead_letter(
        value, b"k", rejections, "catalog+trending", "events.clicks", 2, 41, NOW
    )
    return DeadLetter(0, 7, b"k", orjson.loads(raw))


def test_one_line_per_letter() -> None:
    line = letter([Rejection("event_id is required")]).line()
    assert line == (
        "2025-12-03T07:20:35Z  events.clicks/2/41  catalog+trending  2 B  event_id is required"
    )
    many = letter([Rejection(f"reason {n}", n) for n in range(300)]).line()
    assert many.startswith("2025-12-03T07:20:35Z  events.clicks/2/41  catalog+trending  2 B  ")
    assert "300 rejected: [0] reason 0; [1] reason 1" in many
    assert len(many.split("  ", 4)[4]) <= len("300 rejected: ") + REASONS_SHOWN
    assert "no value" in letter([Rejection("empty")], None).line()


def test_letters_written_before_lists_still_read() -> None:
    old = DeadLetter(
        0,
        1,
        None,
        {
            "reason": "type is required",
            "index": 3,
            "agent": "trending",
            "topic": "events.clicks",
            "partition": 0,
            "offset": 5,
            "rejected_at": NOW,
            "value": "[1, 2, 3, 4]",
        },
    )
    assert old.line().endswith("events.clicks/0/5  trending  12 B  [3] type is required")
    assert old.matches(NOW, "TYPE") and not old.matches(NOW + 1, None)


def test_filters_by_time_and_reason() -> None:
    found = letter([Rejection("fine"), Rejection("message too large: 5 bytes > 4")])
    assert found.matches(None, None) and found.matches(NOW, "too LARGE")
    assert not found.matches(NOW + 1, None) and not found.matches(None, "teleport")


@pytest.mark.parametrize("command", [["deadletters"], ["deadletters", "replay"]])
def test_the_commands_have_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "--since" in result.output and "--reason" in result.output


def test_a_bad_since_is_a_usage_error_before_any_connection() -> None:
    env = {"PIPELINE_KAFKA_BOOTSTRAP": "127.0.0.1:1"}
    for command in (["deadletters"], ["deadletters", "replay"]):
        result = CliRunner().invoke(cli, [*command, "--since", "yesterday"], env=env)
        assert result.exit_code == 2 and "duration" in result.output
