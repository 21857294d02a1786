"""Micro-batches from a Faust stream that wait for more events only while the worker is idle.

Faust's ``Stream.take_events(max, within)`` starts waiting ``within`` for the next batch when
the previous one is handed back, and reads nothing while a batch is applied: a worker that
needs most of its time to keep up with its input still idles up to ``within`` between two
batches, so each event waits longer than it needs to. :func:`take_batches` keeps reading
while a batch is applied (up to one batch ahead) and hands a batch over as soon as it holds
``max_size`` events (or ``max_bytes`` bytes of messages) or its oldest event was read
``linger_s`` ago: a worker that keeps up with its input but needs most of the time to do so
starts each batch without idling; an idle worker still gathers what arrives for
``linger_s``. Behind a backlog (more messages
already in the broker than read), a batch waits until the reader has read them (up to a
full batch), for at most ``linger_s`` after the previous one: fewer, fuller batches drain a
backlog faster.

Events are acknowledged only after the caller's loop body returns for their batch: a batch
abandoned mid-way (the worker stopping or crashing) is not acknowledged, and is delivered
again (offset fences skip whatever of it was applied). Faust waits at a rebalance and at a
graceful stop until every message read is acknowledged, so the batch read ahead is applied
then too (up to two batches instead of one). Events of an earlier rebalance generation
that still reach a batch are dropped unacknowledged (as Faust's compiled stream iterator
drops them): the consumer reads them again from the committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

log = logging.getLogger(__name__)


async def take_batches(
    stream: Any,
    max_size: int,
    linger_s: float,
    waiting: Callable[[list[Any]], int] = lambda read: 0,
    clock: Callable[[], float] = time.monotonic,
    max_bytes: int = 0,
    size: Callable[[Any], int] = lambda event: 0,
    buffer: list[Any] | None = None,
) -> AsyncGenerator[list[Any], None]:
    """Lists of at most ``max_size`` Faust events of ``stream``, in the order read (see the
    module docstring); ends when the stream stops, raises what the stream raised. With
    ``max_bytes`` (0: no bound), a batch also holds at most that many bytes (``size`` of
    each event), but always at least one event: an envelope of many events counts for what
    it holds, not for one message. ``buffer`` (empty) is the list the events read ahead are
    kept in, for the caller to look at while it applies a batch (never to change).
    ``waiting(read)`` counts the messages already in the broker beyond the events ``read``
    so far: while there are some, a batch that is not full also waits until they are read,
    up to ``linger_s`` after the previous batch was handed back (the fewer batches a
    backlog takes, the less it costs). ``stream`` is a ``faust.Stream`` (or anything with
    its ``events``, ``ack``, ``enable_acks``, ``should_stop``, ``wait_for_stopped`` and
    ``app.consumer_generation_id``)."""
    if max_size < 1 or linger_s < 0 or max_bytes < 0:
        raise ValueError(
            f"need max_size >= 1, linger_s >= 0 and max_bytes >= 0,"
            f" got {max_size}, {linger_s}, {max_bytes}"
        )
    if buffer is None:
        buffer = []
    elif buffer:
        raise ValueError("the read-ahead buffer must start empty")
    read_at: list[float] = []
    sizes: list[int] = []
    held = 0  # bytes in the buffer

    def full() -> bool:
        return len(buffer) >= max_size or 0 < max_bytes <= held

    def batch_length() -> int:
        """Events of the next batch: the most that fit ``max_size`` and ``max_bytes``."""
        if not max_bytes:
            return max_size
        count, total = 0, 0
        for found in sizes[:max_size]:
            if count and total + found > max_bytes:
                break
            count, total = count + 1, total + found
        return count

    # The reader sets ``changed`` when the buffer gets its first event, reaches ``target``
    # (the batch size, or fewer: the known backlog) or the reader ends.
    changed = asyncio.Event()
    target = max_size
    # Set when a batch has been taken out of a full buffer.
    room = asyncio.Event()

    async def read() -> None:
        nonlocal held
        try:
            async for event in stream.events():
                buffer.append(event)
                read_at.append(clock())
                if max_bytes:
                    sizes.append(size(event))
                    held += sizes[-1]
                if len(buffer) == 1 or len(buffer) >= target or full():
                    changed.set()
                while full():
                    room.clear()
                    await room.wait()
        finally:
            changed.set()

    acks_before = stream.enable_acks
    # This generator acknowledges each event itself, after its batch is applied.
    stream.enable_acks = False
    reader = asyncio.ensure_future(read())
    handed_back_at = -math.inf
    reported = False
    try:
        while not stream.should_stop:
            if reader.done():
                reported = True
                reader.result()  # the stream's error, if it failed
                return
            if not full():
                wait = None
                if buffer:
                    now = clock()
                    due = read_at[0] + linger_s
                    if due <= now < handed_back_at + linger_s:
                        backlog = waiting(buffer)
                        if backlog > 0:
                            target = min(max_size, len(buffer) + backlog)
                            due = handed_back_at + linger_s
                    wait = due - now
                if wait is None or wait > 0:
                    changed.clear()
                    await stream.wait_for_stopped(changed, timeout=wait)
                    continue
            target = max_size
            length = batch_length()
            batch = buffer[:length]
            del buffer[:length]
            del read_at[:length]
            held -= sum(sizes[:length])
            del sizes[:length]
            room.set()
            generation = stream.app.consumer_generation_id
            batch = [event for event in batch if event.message.generation_id == generation]
            if not batch:
                continue
            yield batch
            for event in batch:
                await stream.ack(event)
            handed_back_at = clock()
    finally:
        stream.enable_acks = acks_before
        reader.cancel()
        # Waits for the reader to end without raising its error again; an error not
        # raised above (met while the batches stopped) is logged.
        await asyncio.wait([reader])
        if not (reported or reader.cancelled()) and reader.exception() is not None:
            log.error("stream reader failed", exc_info=reader.exception())
