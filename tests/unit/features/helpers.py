"""Shared pieces of the feature tests: settings, events, and running a handler's plan
against the in-memory store exactly as the batch loop would (decode, plan, apply)."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.core.events import Event, event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, load_settings
from pipeline.store.base import Reads
from pipeline.store.memory import MemoryStore
from pipeline.stream.handler import Handler

# 2026-01-01T00:00:00Z: every test clock starts here.
T0_MS = 1_767_225_600_000
KEYS = Keys("t")


def settings(**overrides: Any) -> Settings:
    return load_settings(key_prefix="t", **overrides)


def store_at(now_ms: int) -> MemoryStore:
    """A memory store whose clock stands at ``now_ms`` (so expiries behave as then)."""
    return MemoryStore(clock=lambda: now_ms / 1000.0)


def event(event_id: str, event_type: str, user_id: str, timestamp_ms: int, **fields: Any) -> Event:
    return event_from_dict(
        {
            "event_id": event_id,
            "type": event_type,
            "user_id": user_id,
            "timestamp": timestamp_ms,
            **fields,
        }
    )


async def run(handler: Handler[Any], store: MemoryStore, values: list[Any]) -> list[Any]:
    """Decode each value (dicts are JSON-encoded), plan the batch, apply its writes, tell
    the handler it committed, and apply what its ``meanwhile`` returned (as the batch loop
    does when the batch's fences hold). Returns the decoded records."""
    records: list[Any] = []
    for value in values:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        decoded, rejections = handler.decode(raw)
        assert not rejections, rejections
        records.extend(decoded)
    await store.apply(await handler.plan(store, records))
    follow_up = handler.meanwhile()
    handler.committed()
    if follow_up:
        await store.apply(follow_up)
    return records


class Clock:
    """A monotonic clock that moves when a test moves ``now``."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def count_zrange_rows(store: MemoryStore) -> list[int]:
    """The number of rows of each ZRANGE read from ``store`` from now on (every store read
    goes through ``read``), in order."""
    pages: list[int] = []
    read = store.read

    async def counted(reads: Reads) -> list[Any]:
        pages.extend(op[3] - op[2] + 1 for op in reads.ops if op[0] == "zrange")
        return await read(reads)

    store.read = counted  # type: ignore[method-assign]
    return pages


def count_pair(partners: dict[str, float], partner: str, amount: float) -> None:
    """The co-occurrence counts' rule for one pair, on a dictionary of an anchor's partners
    (as ``CoOccurrence.apply`` held them before its arena): an independent reference."""
    held = partners.get(partner)
    if held is not None:
        if amount < 0 and held + amount <= 0:
            del partners[partner]
        else:
            partners[partner] = held + amount
    elif amount >= 0:
        partners[partner] = amount
