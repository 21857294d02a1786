"""Decoding the messages read ahead while the store applies the batch in hand.

While Redis runs a batch's transaction, a worker's event loop has nothing to do but read
more messages (:func:`pipeline.stream.take.take_batches` reads up to one batch ahead).
:class:`DecodeAhead` decodes those then, so that the next batch finds its records ready and
its decoding (about a tenth of a default worker's time) leaves the critical path. Decoding
is pure: a record decoded ahead is the record the batch would have decoded.

An entry is found by the identity of the message's bytes (the read-ahead event and the
batch's message share them) and holds those bytes, so no other message can take it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pipeline.core.events import Rejection
from pipeline.stream.batch import Lane, RawMessage

Decoded = tuple[list[Any], list[Rejection]]
# (topic, value) of each message read ahead.
Pending = Callable[[], Iterable[tuple[str, bytes | None]]]


class DecodeAhead:
    """The records of the messages ``pending()`` lists (those read ahead), decoded by
    :meth:`fill` for every lane that reads them: once per decoder, as in a batch."""

    def __init__(
        self, lanes: Sequence[Lane], pending: Pending, fill_during: Sequence[Lane] = ()
    ) -> None:
        self._lanes = list(lanes)
        self._pending = pending
        # The phase whose transaction the decoding overlaps (the longest: the events'), by
        # its groups' names; empty: any phase's.
        self._fill_during = frozenset(lane.handler.name for lane in fill_during)
        # Decoder -> id(message bytes) -> (the bytes, what the decoder made of them).
        self._decoded: dict[Any, dict[int, tuple[bytes, Decoded]]] = {}
        # Topic -> (decoder, handler) of the lanes reading it, one per decoder.
        self._decoders: dict[str, list[tuple[Any, Any]]] = {}

    def take(self, handler: Any, message: RawMessage) -> Decoded | None:
        """What ``handler``'s decoder made of ``message`` ahead of its batch (None: nothing)."""
        value = message.value
        table = self._decoded.get(type(handler).decode)
        found = table.get(id(value)) if table is not None and value is not None else None
        return found[1] if found is not None and found[0] is value else None

    def fill(self, in_hand: Sequence[RawMessage] = (), phase: Sequence[Lane] = ()) -> None:
        """Decode every message pending now that is not decoded yet, if ``phase`` is the
        one to fill during. Entries of messages neither pending nor ``in_hand`` (the batch
        being applied, whose later phases may still take theirs) are forgotten once they
        are as many as the others."""
        if self._fill_during and {lane.handler.name for lane in phase} != self._fill_during:
            return
        decoded = self._decoded
        count = 0
        for topic, value in self._pending():
            count += 1
            if value is None:
                continue
            for decoder, handler in self._decoders_of(topic):
                table = decoded.setdefault(decoder, {})
                if id(value) not in table:
                    table[id(value)] = (value, handler.decode(value))
        wanted = count + len(in_hand)
        if any(len(table) > 2 * wanted for table in decoded.values()):
            keep = {id(value) for _, value in self._pending()}
            keep.update(id(message.value) for message in in_hand)
            for decoder, table in decoded.items():
                decoded[decoder] = {key: entry for key, entry in table.items() if key in keep}

    def _decoders_of(self, topic: str) -> list[tuple[Any, Any]]:
        found = self._decoders.get(topic)
        if found is None:
            unique: dict[Any, Any] = {}
            for lane in self._lanes:
                if lane.topics is None or topic in lane.topics:
                    unique.setdefault(type(lane.handler).decode, lane.handler)
            found = self._decoders[topic] = list(unique.items())
        return found

    def __len__(self) -> int:
        """Messages decoded ahead and kept, per decoder, summed."""
        return sum(len(table) for table in self._decoded.values())
