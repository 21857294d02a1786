"""The handler contract: what one agent group knows of its domain.

A handler says how to decode one message into records and which writes a batch of records
makes. Everything else (micro-batches, offset fences, dead letters, de-duplication, retries,
metrics) is the batch loop's (``pipeline.stream.batch``). Handlers are built once per
worker by their feature's factory (``pipeline.features``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

from pipeline.core.events import Event, Rejection, parse_message
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.store.base import Store, Writes

R = TypeVar("R")


class Handler(ABC, Generic[R]):
    """One agent group: decode messages, plan a batch's writes.

    The loop calls, per batch: :meth:`decode` for each fresh message, then :meth:`plan` once
    with all their records and :meth:`meanwhile` while the store applies its writes (both
    again, with the same records, when the transaction has to be retried), then exactly one
    of :meth:`committed` or :meth:`aborted`. :meth:`reset` comes when the worker loses partitions.
    """

    #: The agent group's name: ``pipeline worker --agents NAME``, ``agents:`` in topics.yaml,
    #: part of its fence and de-duplication keys.
    name: ClassVar[str]
    #: Whether records carry an ``event_id`` to de-duplicate on (``dedup_window_s``).
    deduplicate: ClassVar[bool] = False
    #: Groups of a worker apply a batch in phases, lowest first, each phase in its own
    #: transaction: the catalog (phase 0) is in Redis before the event groups (phase 1) of
    #: the same batch read items' categories.
    phase: ClassVar[int] = 1

    @abstractmethod
    def decode(self, value: bytes | None) -> tuple[list[R], list[Rejection]]:
        """One message to its valid records and its rejections. Must not raise."""

    @abstractmethod
    async def plan(self, store: Store, records: list[R]) -> Writes:
        """Read what the batch needs, call the domain code, return the batch's writes.

        Must not write to the store itself: the loop applies the writes atomically with the
        offset fences.
        """

    def meanwhile(self) -> Writes | None:
        """Called while the store applies the writes of the last :meth:`plan` (before
        :meth:`committed` or :meth:`aborted`): in-memory work that must not use the store.
        It may return writes of derived state (lists, never counts): once the batch has
        committed, the loop applies them in a transaction of their own, guarded by the
        batch's fences (not applied if another writer moved one since; the handler is then
        :meth:`reset`). An error stops the worker, as an error of ``plan`` does."""
        return None

    def committed(self) -> None:  # noqa: B027 - a hook; most handlers keep no state
        """The last plan's writes are in the store."""

    def aborted(self) -> None:  # noqa: B027
        """The last plan's writes were not applied; forget what planning changed in memory."""

    def reset(self) -> None:  # noqa: B027
        """Partitions were revoked: drop cached state, reload from the store when needed."""

    def warm(self) -> None:  # noqa: B027
        """Called once before the worker consumes: load now what the handler would load on
        first use (compiled kernels), so the first batch does not wait for it."""

    def owns_every_partition(self, exclusive: bool) -> None:  # noqa: B027
        """Called after each rebalance: whether this worker now holds every partition of
        the topics this group reads (no other worker of the group is writing). Handlers
        that guard against other workers' writes may skip that work while it holds."""

    def backlog(self, waiting: int) -> None:  # noqa: B027
        """Called before each batch: how many messages of the batch's partitions are already
        in the topics after it, as the consumer's last fetch saw them (0: caught up).
        Handlers with work that may lag (the personal group's list refreshes) hold it back
        while messages wait, so that ingestion does not."""

    async def idle(self, store: Store) -> Writes | None:
        """Called about once a second while the worker applies no batch: work that no message
        brings (the personal group refreshes lists when new items arrive). The writes returned
        are applied in one transaction without an offset fence, so they must be derived state
        that a later batch may overwrite (lists), never counts; in-memory state it changes
        (items that joined) is written by the next batch as usual. Never runs at the same
        time as a batch or a :meth:`reset`. Errors are logged and the handler is reset; they
        never stop the worker."""
        return None


class EventHandler(Handler[Event]):
    """Base of the handlers that read event topics: one ``decode`` for all of them."""

    deduplicate = True

    def __init__(self, settings: Settings, keys: Keys) -> None:
        self.keys = keys
        self.max_future_ms = int(settings.max_future_skew_s * 1000)
        self.max_message_bytes = settings.max_message_bytes
        self.max_envelope_events = settings.max_envelope_events

    def decode(self, value: bytes | None) -> tuple[list[Event], list[Rejection]]:
        return parse_message(
            value,
            int(time.time() * 1000),
            self.max_future_ms,
            self.max_message_bytes,
            self.max_envelope_events,
        )
