"""The command line as an operator uses it: --help everywhere, generate, produce, topics."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.settings import Settings, to_env
from pipeline.features.registry import declared_topics

COMMANDS = [
    [],
    ["dev"],
    ["worker"],
    ["reader"],
    ["collector"],
    ["topics"],
    ["topics", "apply"],
    ["produce"],
    ["generate"],
    ["evaluate"],
    ["settings"],
    ["status"],
    ["deadletters"],
    ["deadletters", "replay"],
    ["fences"],
    ["fences", "reset"],
    ["bench"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "pipeline")
def test_every_subcommand_has_help(command: list[str]):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and "--help" in result.output


def test_generate_is_reproducible_from_the_seed(tmp_path: Path):
    runner = CliRunner()
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"]
    for path, seed in zip(paths, (7, 7, 8), strict=True):
        result = runner.invoke(
            cli,
            [
                "generate",
                "--seed",
                str(seed),
                "--events",
                "500",
                "--start",
                "1767225600000",
                "--output",
                str(path),
            ],
        )
        assert result.exit_code == 0, result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    assert len(paths[0].read_bytes().splitlines()) == 500


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **to_env(settings)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.integration
def test_topics_apply_and_produce_route_valid_lines_and_report_bad_ones(
    isolated: Settings, tmp_path: Path
):
    first = run_cli(isolated, "topics", "apply")
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("created ") == len(declared_topics(isolated).specs) == 7
    again = run_cli(isolated, "topics", "apply")
    assert again.returncode == 0 and "created" not in again.stdout and "as declared" in again.stdout

    lines = [
        orjson.dumps(
            {
                "event_id": "a",
                "type": "click",
                "user_id": "u1",
                "item_id": "i1",
                "timestamp": "2026-11-23T10:00:00+00:00",
            }
        ),
        b"{broken",
        orjson.dumps(
            {
                "event_id": "b",
                "type": "buy",
                "user_id": "u2",
                "item_id": "i2",
                "timestamp": 1795430000000,
                "value": 2,
            }
        ),
        orjson.dumps(
            {
                "event_id": "c",
                "type": "rate",
                "user_id": "u2",
                "item_id": "i2",
                "timestamp": 1795430000000,
                "value": 9,
            }
        ),
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_cli(isolated, "produce", str(path))
    assert result.returncode == 1
    assert "line 2:" in result.stderr and "line 4:" in result.stderr and "1-5" in result.stderr
    assert "published 2 records" in result.stdout

    topics = declared_topics(isolated)

    async def read_all() -> dict[str, list[tuple[bytes, dict]]]:
        names = [topics.for_event_type("click"), topics.for_event_type("buy")]
        consumer = AIOKafkaConsumer(
            *names,
            bootstrap_servers=isolated.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: dict[str, list] = {name: [] for name in names}
        try:
            async with asyncio.timeout(30):
                while sum(map(len, found.values())) < 2:
                    for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                        found[tp.topic] += [(r.key, orjson.loads(r.value)) for r in records]
        finally:
            await consumer.stop()
        return found

    found = asyncio.run(read_all())
    assert [(k, v["event_id"]) for k, v in found[topics.for_event_type("click")]] == [(b"u1", "a")]
    assert [(k, v["event_id"]) for k, v in found[topics.for_event_type("buy")]] == [(b"u2", "b")]
    # ISO timestamps are normalised to epoch milliseconds on the way in.
    assert found[topics.for_event_type("click")][0][1]["timestamp"] == 1795428000000
