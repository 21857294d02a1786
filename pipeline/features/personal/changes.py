"""What the personal engine's learning changed since its last drain: exactly what the
personal agent writes (``state.changes_writes``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from pipeline.features.related.model import PairCounts, pair_counts


@dataclass
class Changes:
    """What learning touched since the last drain: the agent writes exactly this."""

    users: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)
    # item -> (delta, base) of its stored factor row (``ImplicitMF.drain_deltas``).
    item_deltas: dict[str, tuple[bytes, bytes | None]] = field(default_factory=dict)
    # bucket -> delta of its stored words' row (``WordFactors.drain_deltas``).
    word_deltas: dict[str, tuple[bytes, None]] = field(default_factory=dict)
    # Delta of the stored freshness prior (``FreshnessPrior.drain_delta``), None: none.
    freshness_delta: bytes | None = None
    removed_users: set[str] = field(default_factory=set)
    # anonymous id -> user id, from logins in this batch.
    aliases: dict[str, str] = field(default_factory=dict)
    # Users a forget erased: every stored key of theirs goes before anything of the batch is
    # written (``users`` holds them again when events after the forget started a new state).
    forgotten: set[str] = field(default_factory=set)
    # Ids whose alias key goes (before the batch's new aliases are written).
    unaliased: set[str] = field(default_factory=set)
    # relation -> item -> partner -> amount: the pair counts to add (``CoOccurrence.take_sums``).
    pairs: PairCounts = field(default_factory=pair_counts)
    # (signal, item_id) -> count of positive events.
    popularity: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    # (generation, item_id) -> forward-decayed increment of the cold-start trending counts.
    trending: dict[tuple[int, str], float] = field(default_factory=lambda: defaultdict(float))
