"""Agent group ``users``: user records into Redis hashes, erased by a ``forget``.

It reads ``catalog.users`` (user records) and ``events.profile`` (for ``forget`` events): a
message that is a JSON array, or an object with ``event_id`` or ``type``, is read as events
(the event contract; events other than ``forget`` are ignored), any other as a user record.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from pipeline.core.events import FORGET, Event, Rejection, decode_json, parse_message
from pipeline.core.ids import InvalidInput
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.core.users import User, user_from_dict
from pipeline.store.base import Store, Writes
from pipeline.stream.handler import Handler


def looks_like_events(decoded: Any) -> bool:
    """Whether a decoded message is read as events (see the module docstring)."""
    return isinstance(decoded, list) or (
        isinstance(decoded, dict) and ("event_id" in decoded or "type" in decoded)
    )


class UsersHandler(Handler[User | Event]):
    """A user's latest record replaces the stored one whole; a ``forget`` erases it, and the
    records of the same batch made (``updated_at``) before the forget or undated."""

    name = "users"
    # With the catalog: data about users is in Redis before the event groups of the batch.
    phase = 0

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.keys = keys
        self.max_future_ms = int(settings.max_future_skew_s * 1000)

    def decode(self, value: bytes | None) -> tuple[list[User | Event], list[Rejection]]:
        if value is None:
            return [], [Rejection("empty message (no value)")]
        try:
            decoded = decode_json(value)
        except InvalidInput as exc:
            return [], [Rejection(str(exc))]
        if looks_like_events(decoded):
            events, rejections = parse_message(value, int(time.time() * 1000), self.max_future_ms)
            return [e for e in events if e.event_type == FORGET], rejections
        try:
            return [user_from_dict(decoded)], []
        except InvalidInput as exc:
            return [], [Rejection(str(exc))]

    async def plan(self, store: Store, records: list[User | Event]) -> Writes:
        writes = Writes()
        forgotten: dict[str, int] = {}
        latest: dict[str, User] = {}
        for record in records:
            if isinstance(record, Event):
                forgotten[record.user_id] = max(
                    record.timestamp_ms, forgotten.get(record.user_id, record.timestamp_ms)
                )
            else:
                latest[record.user_id] = record
        for user_id in sorted(forgotten):
            writes.delete(self.keys.user_attributes(user_id))
        for user in latest.values():
            forgot_at = forgotten.get(user.user_id)
            if forgot_at is not None and (
                user.updated_at_ms is None or user.updated_at_ms <= forgot_at
            ):
                continue
            key = self.keys.user_attributes(user.user_id)
            writes.delete(key)
            writes.hset(key, {name: orjson.dumps(value) for name, value in user.attributes.items()})
        return writes
