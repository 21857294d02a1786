"""Seeded fuzzing of a running worker with malformed input (issue 9: bad input is bounded).

A worker with the default agent groups (``pipeline worker``) reads random bytes, invalid
UTF-8, wrong shapes and types, forbidden characters in ids, NaN, deep nesting, an envelope of
10,000 bad elements, the issue's 800,000 bytes of 0xff and a message over the size limit. It
must stay up, write exactly one bounded dead letter per message, and change no Redis key but
its offset fences (and de-duplication or metrics bookkeeping).
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from pipeline.core.deadletters import (
    MAX_KEY_BYTES,
    dead_letter_bound,
    dead_letter_key,
    original_of,
)
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets
from pipeline.stream.kafka import apply_topics, kafka_producer
from pipeline.tools.deadletters import read_dead_letters
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

SEED = 20261203
# Lower than the default (1 MiB, more than a producer sends by default) so that one message
# of the fuzz is over it; the 800,000-byte message stays under it.
MAX_MESSAGE_BYTES = 900_000
# Keys the worker may write for bad input: bookkeeping, never state.
BOOKKEEPING = ("fence", "seen", "metrics", "status")

# Ids that break the id contract, and ids that are fine (":", "/", letters) but travel in an
# event that is bad for another reason.
BAD_IDS = [
    "a*b",
    "{user}",
    "line\nbreak",
    "tab\there",
    "sp ace",
    "",
    "x" * 129,
    "zero\u200bwidth",
    "rtl\u202eoverride",
    "emoji\U0001f600",
    "nul\u0000",
    "\ufeffbom",
    "quote\"'",
]
FINE_IDS = ["a:b", "a/b", "caf\u00e9", "\u0639\u0631\u0628\u064a", "x" * 128, "e\u0301"]


def event(rng: random.Random, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": f"e{rng.randrange(10**9)}",
        "type": "click",
        "user_id": rng.choice(FINE_IDS),
        "item_id": rng.choice(FINE_IDS),
        "timestamp": int(time.time() * 1000),
    }
    base.update(fields)
    return {name: value for name, value in base.items() if value is not ...}


def bad_events(rng: random.Random) -> list[Any]:
    """Decoded JSON values that each break the event contract."""
    shapes: list[Any] = [{}, [], None, "click", 12, 1.5, True, [[]], [None], {"event": {}}]
    for name in ("event_id", "user_id", "item_id"):
        shapes += [event(rng, **{name: bad}) for bad in BAD_IDS]
        shapes += [event(rng, **{name: 7}), event(rng, **{name: ["a"]}), event(rng, **{name: ...})]
    for fine in FINE_IDS:
        shapes.append(event(rng, user_id=fine, item_id=fine, type="teleport"))
    shapes += [
        event(rng, type=None),
        event(rng, type=["click"]),
        event(rng, timestamp=...),
        event(rng, timestamp=True),
        event(rng, timestamp="yesterday"),
        event(rng, timestamp=int(time.time())),  # seconds, not milliseconds
        event(rng, timestamp=int(time.time() * 1000) + 10**9),  # the future
        event(rng, timestamp="2026-01-01T00:00:00"),  # no offset
        event(rng, type="rate", value=9),
        event(rng, type="rate"),
        event(rng, value="1"),
        event(rng, price=-1),
        event(rng, context=["device"]),
        event(rng, context={"k": {"nested": {"deeper": [1, 2, 3]}}}),
        event(rng, context={f"k{n}": n for n in range(40)}),
        event(rng, type="impression", item_id=..., items="a,b"),
        event(rng, type="impression", item_id=..., items=[f"i{n}" for n in range(101)]),
        event(rng, type="login", item_id=...),
        event(rng, type="forget", item_id="i1"),
    ]
    return shapes


def raw_messages(rng: random.Random) -> list[bytes | None]:
    """Event-topic message values, every one of them bad."""
    values: list[bytes | None] = [orjson.dumps(shape) for shape in bad_events(rng)]
    values += [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 3000))) for _ in range(20)]
    values += [
        None,  # a tombstone
        b"",
        b'{"event_id": "\xff\xfe", "type": "click"}',  # invalid UTF-8 inside JSON
        b"\xed\xa0\x80",  # an encoded surrogate
        b'{"event_id": "\\ud800", "type": "click"}',  # a lone surrogate escape
        b'{"event_id": "e1", "type": "rate", "value": NaN}',
        b'{"event_id": "e1", "type": "rate", "value": Infinity}',
        b'{"event_id": "e1", "type": "rate", "value": 1e999}',
        b'{"event_id": "e1", "type": "buy", "value": 1180591620717411303424}',  # 2**70
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        orjson.dumps([{"type": "click"}] * 10_000),  # 10,000 bad elements: one dead letter
        orjson.dumps([1] * 10_001),  # over the envelope limit
        b"\xff" * 800_000,  # the reproduction
        b"[" + b"1," * (MAX_MESSAGE_BYTES // 2) + b"1]",  # over the message size limit
        orjson.dumps([event(rng, user_id=bad) for bad in BAD_IDS]),
    ]
    return values


def catalog_messages(rng: random.Random) -> list[bytes | None]:
    values: list[bytes | None] = [
        orjson.dumps(item)
        for item in [
            {},
            {"item_id": "a*b"},
            {"item_id": "i1", "categories": "shoes"},
            {"item_id": "i1", "categories": ["{x}"]},
            {"item_id": "i1", "attributes": ["x"]},
            {"item_id": "i1", "price": -3},
            [{"item_id": "i1"}],
        ]
    ]
    values += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 500))) for _ in range(5)]
    return [*values, b"\xff" * 200_000, None]


async def snapshot(client: aioredis.Redis, prefix: str) -> dict[bytes, bytes | None]:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    return {key: await client.dump(key) for key in keys}


def is_bookkeeping(key: bytes, prefix: str) -> bool:
    return any(key.decode().startswith(f"{prefix}:{kind}:") for kind in BOOKKEEPING)


async def test_a_worker_survives_malformed_input_with_one_bounded_dead_letter_each(
    isolated: Settings, tmp_path: Path
) -> None:
    settings = isolated.model_copy(update={"max_message_bytes": MAX_MESSAGE_BYTES})
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    rng = random.Random(SEED)
    event_topics = [topics.for_event_type("click"), topics.for_event_type("buy")]
    keys_pool: list[bytes | None] = [None, b"", b"u1", "\u00e9\n*{".encode(), b"k" * 5000]
    planned = [(rng.choice(event_topics), value) for value in raw_messages(rng)]
    planned += [(topics.catalog.name, value) for value in catalog_messages(rng)]
    client = aioredis.from_url(settings.redis_url)
    store = connect(settings)
    keys = Keys(settings.key_prefix)
    before = await snapshot(client, settings.key_prefix)

    # (topic, partition, offset) -> (key, value) of every message sent.
    sent: dict[tuple[str, int, int], tuple[bytes | None, bytes | None]] = {}
    async with kafka_producer(settings) as producer:
        pending = []
        for topic, value in planned:
            key = rng.choice(keys_pool)
            pending.append((key, value, await producer.send(topic, value=value, key=key)))
        for key, value, future in pending:
            meta = await future
            sent[(meta.topic, meta.partition, meta.offset)] = (key, value)
    last: dict[tuple[str, str], int] = {}
    for topic, partition, offset in sent:
        group = "catalog" if topic == topics.catalog.name else "trending"
        last[(group, f"{topic}:{partition}")] = max(
            offset, last.get((group, f"{topic}:{partition}"), -1)
        )

    log = tmp_path / "worker.log"

    async def fences() -> dict[tuple[str, str], int]:
        # The fault: a dead letter too large to send stopped the worker (exit 70).
        code = worker.process.poll()
        assert code is None, f"the worker stopped ({code}):\n{log_tail(log)}"
        found = {}
        for group in ("catalog", "trending"):
            for where, offset in (await applied_offsets(store, keys, group)).items():
                found[(group, where)] = offset
        return found

    worker = pipeline_process(settings, ["worker"], log)
    try:
        await wait_for(fences, lambda found: found == last, 60, "fences at the last offsets")
        reading = await read_dead_letters(settings, topics.dead_letter.name)
    finally:
        worker.stop()
        await store.close()
    after = await snapshot(client, settings.key_prefix)
    await client.aclose()

    # Exactly one dead letter per message, each within the documented bound.
    where = [
        (letter.record["topic"], letter.record["partition"], letter.record["offset"])
        for letter in reading.letters
    ]
    assert len(where) == len(set(where)) == len(sent) and set(where) == set(sent)
    assert reading.unreadable == 0
    bound = dead_letter_bound(settings.dead_letter_max_value_bytes)
    reasons: list[str] = []
    for letter in reading.letters:
        record = letter.record
        source = (record["topic"], record["partition"], record["offset"])
        key, value = sent[source]
        assert len(orjson.dumps(record)) <= bound
        assert record["agent"] == ("catalog" if source[0] == topics.catalog.name else "trending")
        if value is not None:
            assert record["size"] == len(value)
            assert record["sha256"] == hashlib.sha256(value).hexdigest()
        assert letter.key == dead_letter_key(key)
        kept = value is not None and len(value) <= settings.dead_letter_max_value_bytes
        kept = kept and (key is None or len(key) <= MAX_KEY_BYTES)
        assert original_of(record).value == (value if kept else None)
        reasons += letter.reasons
    assert f"message too large: {MAX_MESSAGE_BYTES + 3} bytes > {MAX_MESSAGE_BYTES}" in reasons
    assert "envelope too long: 10001 events > 10000" in reasons
    assert sum(letter.record["rejected"] == 10_000 for letter in reading.letters) == 1

    # No state changed: only bookkeeping keys are new or different.
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    assert all(is_bookkeeping(key, settings.key_prefix) for key in changed), sorted(changed)
