"""Messages decoded as they are read, ahead of their batch.

A worker's event loop reads messages (:func:`pipeline.stream.take.take_batches` reads up to
one batch ahead) whenever the batch in hand waits: above all while Redis runs the batch's
transaction, about a third of a default worker's time. :class:`DecodeAhead` decodes each
message as it is read, so that this decoding (about a tenth of a default worker's work)
fills those waits instead of lengthening the next batch. A record decoded ahead is the record
the batch would have decoded: decoding reads only the bytes and the clock, whose one use (the
bound on timestamps in the future, minutes by default) is checked up to a batch earlier,
typically under a second.

An entry is found by the identity of the message's bytes (the event read and the batch's
message share them) and holds those bytes, so no other message can take it; a batch takes
(removes) its entries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pipeline.core.events import Rejection
from pipeline.stream.batch import Lane, RawMessage

log = logging.getLogger(__name__)

Decoded = tuple[list[Any], list[Rejection]]


class DecodeAhead:
    """Records of messages decoded by :meth:`read` for every lane that reads them (once per
    decoder, as in a batch), until a batch takes them. At most ``limit`` entries per
    decoder: past it (messages read and then dropped, at a rebalance) they are forgotten,
    and decoded again in their batch if they come."""

    def __init__(self, lanes: Sequence[Lane], limit: int) -> None:
        self._lanes = list(lanes)
        self._limit = max(1, limit)
        # Decoder -> id(message bytes) -> (the bytes, what the decoder made of them).
        self._decoded: dict[Any, dict[int, tuple[bytes, Decoded]]] = {}
        # Topic -> (decoder, handler) of the lanes reading it, one per decoder.
        self._decoders: dict[str, list[tuple[Any, Any]]] = {}

    def read(self, topic: str, value: bytes | None) -> None:
        """Decode a message of ``topic`` just read, for every decoder of its readers. Never
        raises: a decoder that fails here (decoders reject, they do not raise) leaves the
        message to its batch, which decodes it itself and meets the failure there."""
        if value is None:
            return
        for decoder, handler in self._decoders_of(topic):
            table = self._decoded.setdefault(decoder, {})
            if len(table) >= self._limit:
                table.clear()
            try:
                table[id(value)] = (value, handler.decode(value))
            except Exception:
                log.debug("decoding a message ahead failed", exc_info=True)

    def take(self, handler: Any, message: RawMessage) -> Decoded | None:
        """What ``handler``'s decoder made of ``message`` when it was read (None: nothing);
        taken once."""
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
                if lane.topics is None or topic in lane.topics:
                    unique.setdefault(type(lane.handler).decode, lane.handler)
            found = self._decoders[topic] = list(unique.items())
        return found

    def __len__(self) -> int:
        """Messages decoded and not taken yet, per decoder, summed."""
        return sum(len(table) for table in self._decoded.values())
