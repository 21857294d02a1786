"""``pipeline deadletters`` against a real broker: listing with filters, and replaying the
originals that dead letters kept whole (pipeline/tools/deadletters.py)."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.core.deadletters import build_dead_letter, dead_letter_key
from pipeline.core.events import Rejection
from pipeline.core.settings import Settings, to_env
from pipeline.core.topics import Topics
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import apply_topics
from tests.integration.helpers import produce

pytestmark = pytest.mark.integration

HUGE = b"\xff" * 800_000
ENVELOPE = orjson.dumps([{"type": "click"}, {"event_id": "e", "type": "teleport"}, 7])


def letters(topics: Topics, now: int) -> list[tuple[bytes | None, bytes]]:
    clicks = topics.for_event_type("click")
    made = [
        (b"alice", b'{"type": "click"}', [Rejection("event_id is required")], now - 3 * 3600_000),
        (b"bob", b"\xfe\x00 not json", [Rejection("not valid JSON: x")], now - 600_000),
        (b"carol", HUGE, [Rejection("not valid JSON: y")], now - 300_000),
        (
            b"dave",
            ENVELOPE,
            [Rejection("event_id is required", 0), Rejection("type must be one", 1)],
            now - 60_000,
        ),
    ]
    out: list[tuple[bytes | None, bytes]] = [
        (
            dead_letter_key(key),
            build_dead_letter(value, key, rejections, "trending", clicks, 1, n, at),
        )
        for n, (key, value, rejections, at) in enumerate(made)
    ]
    # Something that is no dead letter: counted, never fatal.
    return [*out, (None, b"garbage")]


async def consume(settings: Settings, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    found: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while len(found) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            found.extend((r.key, r.value) for records in batch.values() for r in records)
    finally:
        await consumer.stop()
    return found


def test_list_filter_and_replay_dead_letters(isolated: Settings) -> None:
    topics = declared_topics(isolated)
    asyncio.run(apply_topics(isolated.kafka_bootstrap, topics.specs))
    now = int(time.time() * 1000)
    asyncio.run(produce(isolated, topics.dead_letter.name, letters(topics, now)))
    runner = CliRunner()
    env = to_env(isolated)

    def run(*args: str) -> tuple[list[str], str]:
        result = runner.invoke(cli, ["deadletters", *args], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines(), result.stderr

    lines, summary = run()
    assert len(lines) == 4
    assert "4 dead letters shown of 5" in summary and "1 records were not dead letters" in summary
    clicks = topics.for_event_type("click")
    assert f"{clicks}/1/0  trending  17 B  event_id is required" in lines[0]
    assert "800000 B" in lines[2]
    assert "2 rejected: [0] event_id is required; [1] type must be one" in lines[3]

    lines, _ = run("--since", "30m", "--reason", "JSON")
    assert [line.split()[1] for line in lines] == [f"{clicks}/1/1", f"{clicks}/1/2"]
    lines, _ = run("--limit", "1", "--json")
    assert [orjson.loads(line)["offset"] for line in lines] == [3]
    assert run("--reason", "no such reason")[0] == []
    bad = runner.invoke(cli, ["deadletters", "--since", "yesterday"], env=env)
    assert bad.exit_code == 2 and "duration" in bad.output

    # The huge message kept only a prefix: counted, not replayed.
    lines, errors = run("replay", "--reason", "json")
    assert lines[-1] == "replayed 1 of 2 matching dead letters; 1 could not be replayed"
    assert "could not replay 1: only a prefix kept (the message was over the value limit)" in errors
    profile = topics.for_event_type("login")
    lines, _ = run("replay", "--since", "2h", "--to-topic", profile)
    assert lines == [f"replayed 2 to {profile}", lines[-1]]
    replayed = asyncio.run(consume(isolated, clicks, 1))
    assert replayed == [(b"bob", b"\xfe\x00 not json")]
    moved = asyncio.run(consume(isolated, profile, 2))
    assert sorted(moved) == [(b"bob", b"\xfe\x00 not json"), (b"dave", ENVELOPE)]
