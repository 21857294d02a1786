"""Decoding ahead (``pipeline.stream.ahead``): the messages read ahead are decoded while a
batch's transaction runs, once per decoder, and their batch takes those records instead of
decoding again; nothing decoded ahead is ever taken for a message with other bytes, nor
taken twice."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.core.events import Event, Rejection
from pipeline.store.base import Store, Writes
from pipeline.store.memory import MemoryStore
from pipeline.stream.ahead import DecodeAhead
from pipeline.stream.batch import Lane, RawMessage, process_lanes
from pipeline.stream.fence import Position
from pipeline.stream.handler import EventHandler
from tests.unit.features.helpers import KEYS, T0_MS, settings


class Decoding(EventHandler):
    """Counts the items it plans and the messages every handler of its class decodes."""

    decoded = 0

    def __init__(self, name: str) -> None:
        super().__init__(settings(max_future_skew_s=10**9), KEYS)
        self.name = name
        self.planned: list[Event] = []

    def decode(self, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        Decoding.decoded += 1
        return super().decode(value)

    async def plan(self, store: Store, records: list[Event]) -> Writes:
        self.planned.extend(records)
        return Writes().hincr_float(f"t:{self.name}", {"n": float(len(records))})


class Other(Decoding):
    """Another decoder (a class of its own), for another topic."""

    def decode(self, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        return super().decode(value)


def message(offset: int, item: str = "a", topic: str = "clicks") -> RawMessage:
    body = {
        "event_id": f"e{offset}",
        "type": "click",
        "user_id": "u",
        "item_id": item,
        "timestamp": T0_MS,
    }
    return RawMessage(Position(topic, 0, offset), b"u", orjson.dumps(body))


def pending_of(messages: list[RawMessage]) -> Any:
    return lambda: [(m.position.topic, m.value) for m in messages]


@pytest.fixture(autouse=True)
def zero_count() -> None:
    Decoding.decoded = 0


def test_fill_decodes_each_message_once_per_decoder_and_only_for_its_readers() -> None:
    first, second, other = Decoding("first"), Decoding("second"), Other("other")
    both = frozenset({"clicks", "profile"})
    lanes = [Lane(first, both), Lane(second, both), Lane(other, frozenset({"profile"}))]
    read = [message(0), message(1, "b"), message(2, topic="profile"), message(3, topic="none")]
    ahead = DecodeAhead(lanes, pending_of(read), 100)
    ahead.fill()
    # first and second share a decoder (their class): one decode per clicks message; the
    # profile message once more for Other's; the message no lane reads not at all.
    assert Decoding.decoded == 4
    assert len(ahead) == 4
    ahead.fill()
    assert Decoding.decoded == 4, "a message decoded ahead is not decoded again"
    found = ahead.take(first, read[0])
    assert found is not None and [e.item_id for e in found[0]] == ["a"]
    # Taken once: the batch keeps what it took for all its lanes of that decoder.
    assert ahead.take(second, read[0]) is None
    taken = ahead.take(other, read[2])
    assert taken is not None and taken[0][0].event_id == "e2"
    assert ahead.take(other, read[1]) is None, "Other never decoded a clicks message"
    assert len(ahead) == 2


def test_a_message_with_other_bytes_takes_nothing() -> None:
    handler = Decoding("first")
    read = [message(0), RawMessage(Position("clicks", 0, 1), b"u", None)]
    ahead = DecodeAhead([Lane(handler)], pending_of(read), 100)
    ahead.fill()
    # The same position and equal content, but another bytes object (another delivery):
    # only the bytes decoded are taken.
    again = RawMessage(read[0].position, b"u", bytes(bytearray(read[0].value or b"")))
    assert ahead.take(handler, again) is None
    assert ahead.take(handler, message(0, "z")) is None
    assert ahead.take(handler, read[1]) is None, "a message without a value is not decoded"
    assert ahead.take(handler, read[0]) is not None


def test_entries_past_the_limit_are_forgotten_and_decoded_again_in_their_batch() -> None:
    handler = Decoding("first")
    read = [message(i) for i in range(5)]
    ahead = DecodeAhead([Lane(handler)], pending_of(read), 3)
    ahead.fill()
    assert len(ahead) <= 3
    assert ahead.take(handler, read[0]) is None
    assert ahead.take(handler, read[4]) is not None


def test_only_the_chosen_phase_fills() -> None:
    events, users = Decoding("events"), Other("users")
    read = [message(0)]
    ahead = DecodeAhead([Lane(events), Lane(users)], pending_of(read), 100, [Lane(events)])
    ahead.fill([Lane(users)])
    assert Decoding.decoded == 0
    ahead.fill([Lane(events)])
    assert Decoding.decoded == 2


class Failing(Decoding):
    """A decoder that breaks its contract and raises."""

    def decode(self, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        raise RuntimeError("decoder bug")


def test_a_decoder_failing_ahead_leaves_the_message_to_its_batch() -> None:
    failing, fine = Failing("failing"), Other("fine")
    read = [message(0)]
    ahead = DecodeAhead([Lane(failing), Lane(fine)], pending_of(read), 100)
    ahead.fill()  # does not raise
    assert ahead.take(failing, read[0]) is None
    assert ahead.take(fine, read[0]) is not None, "the other decoder's entry is kept"


@pytest.mark.asyncio
async def test_a_batch_takes_what_was_decoded_during_the_one_before() -> None:
    store = MemoryStore()
    handler = Decoding("first")
    lanes = [Lane(handler)]
    first_batch = [message(0), message(1, "b")]
    second_batch = [message(2, "c"), message(3, "d")]
    # The read-ahead buffer: the second batch while the first is applied, then empty (a
    # batch leaves the buffer when it is taken).
    buffer = list(second_batch)
    ahead = DecodeAhead(lanes, pending_of(buffer), 100)

    async def no_letters(_: list[tuple[bytes | None, bytes]]) -> None:
        raise AssertionError("no dead letters expected")

    await process_lanes(store, KEYS, lanes, first_batch, no_letters, ahead=ahead)
    # The first batch decoded its own two, then the two read ahead during its transaction.
    assert Decoding.decoded == 4
    buffer.clear()
    applied = await process_lanes(store, KEYS, lanes, second_batch, no_letters, ahead=ahead)
    assert applied == {"first": 2}
    assert Decoding.decoded == 4, "the second batch decoded nothing itself"
    assert [event.item_id for event in handler.planned] == ["a", "b", "c", "d"]
    assert float(await store.hget("t:first", "n") or 0) == 4.0
    assert len(ahead) == 0
