"""Decoding the messages read ahead while Redis runs the batch in hand.

While Redis runs a batch's transaction (about a third of a default worker's time), the
worker's main thread has nothing to do but read more messages
(:func:`pipeline.stream.take.take_batches` reads up to one batch ahead). :class:`DecodeAhead`
decodes the messages read ahead then, in one go, so that the next batch finds its records
ready and its decoding (about a tenth of a default worker's work) leaves the critical path.
(Decoding each message as it is read, interleaved with the consumer and the batch's own
waits, measured slower for a ``personal`` worker: one go while Redis works is the point.)

A record decoded ahead is the record the batch would have decoded: decoding reads only the
bytes and the clock, whose one use (the bound on timestamps in the future, minutes by
default) is checked up to a batch earlier, typically under a second. An entry is found by
the identity of the message's bytes (the event read and the batch's message share them) and
holds those bytes, so no other message can take it; a batch takes (removes) its entries."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pipeline.core.events import Rejection
from pipeline.stream.batch import Lane, RawMessage

log = logging.getLogger(__name__)

Decoded = tuple[list[Any], list[Rejection]]
# (topic, value) of each message read ahead.
Pending = Callable[[], Iterable[tuple[str, bytes | None]]]


class DecodeAhead:
    """Records of the messages ``pending()`` lists (those read ahead), decoded by
    :meth:`fill` for every lane that reads them (once per decoder, as in a batch) until a
    batch takes them. At most ``limit`` entries per decoder: past it (messages read, then
    dropped at a rebalance) they are forgotten, and decoded again in their batch if they
    come. ``fill_during``: the phase whose transaction the decoding overlaps (the longest,
    the events'), by its groups; empty: any phase's."""

    def __init__(
        self,
        lanes: Sequence[Lane],
        pending: Pending,
        limit: int,
        fill_during: Sequence[Lane] = (),
    ) -> None:
        self._lanes = list(lanes)
        self._pending = pending
        self._limit = max(1, limit)
        self._fill_during = frozenset(lane.handler.name for lane in fill_during)
        # Decoder -> id(message bytes) -> (the bytes, what the decoder made of them).
        self._decoded: dict[Any, dict[int, tuple[bytes, Decoded]]] = {}
        # Topic -> (decoder, handler) of the lanes reading it, one per decoder.
        self._decoders: dict[str, list[tuple[Any, Any]]] = {}

    def fill(self, phase: Sequence[Lane] = ()) -> None:
        """Decode every message pending now that is not decoded yet, if ``phase`` is the
        one to fill during. Never raises: a decoder that fails here (decoders reject, they
        do not raise) leaves the message to its batch, which meets the failure there."""
        if self._fill_during and {lane.handler.name for lane in phase} != self._fill_during:
            return
        decoded = self._decoded
        for topic, value in self._pending():
            if value is None:
                continue
            for decoder, handler in self._decoders_of(topic):
                table = decoded.setdefault(decoder, {})
                if id(value) in table:
                    continue
                if len(table) >= self._limit:
                    table.clear()
                try:
                    table[id(value)] = (value, handler.decode(value))
                except Exception:
                    log.debug("decoding a message ahead failed", exc_info=True)

    def take(self, handler: Any, message: RawMessage) -> Decoded | None:
        """What ``handler``'s decoder made of ``message`` ahead of its batch (None:
        nothing); taken once."""
        value = message.value
        table = self._decoded.get(type(handler).decode)
        if table is None or value is None:
            return None
        found = table.pop(id(value), None)
        return found[1] if found is not None and found[0] is value else None

    def _decoders_of(self, topic: str) -> list[tuple[Any, Any]]:
        found = self._decoders.get(topic)
        if found is None:
            unique: dict[Any, Any] = {}
            for lane in self._lanes:
                if lane.reads_topic(topic):
                    unique.setdefault(type(lane.handler).decode, lane.handler)
            found = self._decoders[topic] = list(unique.items())
        return found

    def __len__(self) -> int:
        """Messages decoded ahead and not taken yet, per decoder, summed."""
        return sum(len(table) for table in self._decoded.values())
