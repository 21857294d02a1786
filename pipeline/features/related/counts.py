"""The co-occurrence counts: per relation and anchor, the partners' counts, in item numbers.

Items are numbered as they are first met (``ids`` and ``number``; an engine numbers each
event's item, and its users' histories keep the numbers for pairing, ``pairing.py``); each
(relation, anchor) list is a row of a :class:`~pipeline.features.related.arena.PartnerArena`,
found through ``row_of[relation code, anchor number]`` (-1: no list yet). Pairs wait in
numbers and a batch of them is counted by one compiled call, where a dictionary of
dictionaries cost a Python update per pair, and the scoring kernels read the lists where
they lie (``NeighbourIndex`` translates item numbers to the factor model's indexes).
Text ids appear only where lists are read out (:meth:`CountLists.partners`) or loaded.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from itertools import pairwise
from operator import itemgetter

import numpy as np

from pipeline.core.compiled import compiled
from pipeline.features.related.arena import SMALLEST_BLOCK, PartnerArena, add_amounts

# Pairs that wait at most before they are counted (:meth:`CountLists.add`).
MAX_WAITING = 65_536


@compiled
def held_lists(
    row_of: np.ndarray, start: np.ndarray, size: np.ndarray, codes: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lists with an entry of each relation ``codes[i]`` (in that order) and anchor
    number ``anchors[k]`` (in that order; -1: no number): (starts, sizes, i, k) per list."""
    most = codes.shape[0] * anchors.shape[0]
    starts = np.empty(most, dtype=np.int64)
    sizes = np.empty(most, dtype=np.int64)
    relation_at = np.empty(most, dtype=np.int64)
    anchor_at = np.empty(most, dtype=np.int64)
    found = 0
    for i in range(codes.shape[0]):
        for k in range(anchors.shape[0]):
            if anchors[k] < 0:
                continue
            row = row_of[codes[i], anchors[k]]
            if row < 0 or size[row] == 0:
                continue
            starts[found] = start[row]
            sizes[found] = size[row]
            relation_at[found] = i
            anchor_at[found] = k
            found += 1
    return starts[:found], sizes[:found], relation_at[:found], anchor_at[:found]


class CountLists:
    """Per (relation, anchor) partner counts for the ``relations`` named (their codes are
    their positions)."""

    def __init__(
        self, relations: Sequence[str], longest: int, entries: int = 4096, summing: bool = False
    ) -> None:
        self.relations = tuple(relations)
        # Lists left longer than this are marked for :meth:`take_long`.
        self.longest = longest
        self.code = {relation: code for code, relation in enumerate(self.relations)}
        self.ids: list[str] = []
        self.number: dict[str, int] = {}
        self.arena = PartnerArena(entries)
        # Relation code x anchor number -> the anchor's row (-1: none yet).
        self.row_of = np.full((len(self.relations), 256), -1, dtype=np.int64)
        # Pairs added and not yet counted (see :meth:`add`), in numbers: the first
        # ``waiting_count`` columns of ``waiting`` (relation code, anchor, partner) and of
        # ``waiting_amounts``. Pairing (``pairing.py``) writes here directly.
        room = max(MAX_WAITING, 1)
        self.waiting = np.empty((3, room), dtype=np.int64)
        self.waiting_amounts = np.empty(room, dtype=np.float64)
        self.waiting_count = 0
        # Summing (what a batch writes to the store): the (codes, anchors, partners, amounts)
        # counted since the last :meth:`take_sums`, one group of arrays per flush.
        self.summing = summing
        self._counted: list[tuple[np.ndarray, ...]] = []

    # --- numbering ----------------------------------------------------------------------------
    def numbers(self, items: Collection[str], dtype: type = np.int64) -> np.ndarray:
        """The numbers of ``items`` (numbered now when new)."""
        number = self.number
        try:
            return np.fromiter(map(number.__getitem__, items), dtype=dtype, count=len(items))
        except KeyError:
            for item in items:
                if item not in number:
                    self._numbered(item)
            return np.fromiter(map(number.__getitem__, items), dtype=dtype, count=len(items))

    def number_of(self, item: str) -> int:
        """The number of ``item`` (numbered now when new)."""
        number = self.number.get(item)
        return self._numbered(item) if number is None else number

    def _numbered(self, item: str) -> int:
        number = self.number[item] = len(self.ids)
        self.ids.append(item)
        if number >= self.row_of.shape[1]:
            grown = np.full((len(self.relations), 2 * self.row_of.shape[1]), -1, dtype=np.int64)
            grown[:, : self.row_of.shape[1]] = self.row_of
            self.row_of = grown
        return number

    # --- rows ---------------------------------------------------------------------------------
    def row(self, relation: str, anchor: str) -> int | None:
        """The row of an anchor's list, None when it has none (or an empty one)."""
        self.flush()
        number = self.number.get(anchor)
        if number is None:
            return None
        row = int(self.row_of[self.code[relation], number])
        return row if row >= 0 and self.arena.size[row] else None

    def _row(self, code: int, anchor: int) -> int:
        """The row of the (relation code, anchor number) list, made when new."""
        row = int(self.row_of[code, anchor])
        if row < 0:
            row = self.row_of[code, anchor] = self.arena.new((code, anchor), [], [])
        return row

    def held(
        self, relations: Sequence[str], anchors: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Where the lists of every relation and anchor with an entry lie in the arena, relation
        by relation, anchors in order: (starts, sizes, relation positions, anchor positions)
        (see :func:`held_lists`)."""
        self.flush()
        number = self.number
        return held_lists(
            self.row_of,
            self.arena.start,
            self.arena.size,
            np.array([self.code[relation] for relation in relations], dtype=np.int64),
            np.array([number.get(anchor, -1) for anchor in anchors], dtype=np.int64),
        )

    # --- changes ------------------------------------------------------------------------------
    def add(self, pairs: Sequence[tuple[str, str, str, float]]) -> None:
        """Add each (relation, anchor, partner, amount) to its count, in order, with the rule
        of :func:`~pipeline.features.related.arena.add_amounts`. They wait, numbered, and
        are counted by one compiled call when anything is read (or the room for waiting
        pairs is full). A relation not named at construction is a ValueError here, with
        none of the call's pairs taken."""
        try:
            codes = list(map(self.code.__getitem__, map(itemgetter(0), pairs)))
        except KeyError as exc:
            raise ValueError(f"unknown relation {exc}; known: {self.relations}") from None
        anchors = self.numbers(list(map(itemgetter(1), pairs)))
        partners = self.numbers(list(map(itemgetter(2), pairs)))
        amounts = list(map(itemgetter(3), pairs))
        room = self.waiting.shape[1]
        begin = 0
        while begin < len(pairs):
            if self.waiting_count == room:
                self.flush()
            at = self.waiting_count
            end = min(len(pairs), begin + room - at)
            taken = slice(at, at + end - begin)
            self.waiting[0, taken] = codes[begin:end]
            self.waiting[1, taken] = anchors[begin:end]
            self.waiting[2, taken] = partners[begin:end]
            self.waiting_amounts[taken] = amounts[begin:end]
            self.waiting_count += end - begin
            begin = end

    def make_room(self, pairs: int) -> None:
        """Count what waits unless ``pairs`` more fit in the room for waiting pairs (what
        pairing asks before it writes them)."""
        if self.waiting_count + pairs > self.waiting.shape[1]:
            self.flush()
            if pairs > self.waiting.shape[1]:
                self.waiting = np.empty((3, pairs), dtype=np.int64)
                self.waiting_amounts = np.empty(pairs, dtype=np.float64)

    def flush(self) -> None:
        """Count the pairs waiting (every read does first)."""
        size = self.waiting_count
        if not size:
            return
        self.waiting_count = 0
        codes, anchor_numbers, partner_numbers = self.waiting[:, :size]
        amount_array = self.waiting_amounts[:size]
        if self.summing:
            self._counted.append(
                (codes.copy(), anchor_numbers.copy(), partner_numbers.copy(), amount_array.copy())
            )
        arena = self.arena
        begin = 0
        while True:
            begin = add_amounts(
                arena.partner,
                arena.count,
                arena.start,
                arena.size,
                arena.capacity,
                arena.live,
                arena.long,
                arena.owner,
                arena.meta,
                self.row_of,
                codes,
                anchor_numbers,
                partner_numbers,
                amount_array,
                self.longest,
                begin,
            )
            if begin < 0:
                return
            row = self.row_of[codes[begin], anchor_numbers[begin]]
            arena.make_room(SMALLEST_BLOCK if row < 0 else 2 * int(arena.capacity[row]))

    def take_sums(self) -> dict[str, dict[str, dict[str, float]]]:
        """relation -> anchor -> partner -> the sum of the amounts added since the last call
        (summing on; sums of 0 too: a login's correction and a new pair cancel out). Each sum
        adds its amounts in the order they came, as a dictionary updated pair by pair would;
        the lists and their partners come in item-number order, not in that order. Summed
        with numpy at the batch's end, not in a Python update per pair as they come."""
        self.flush()
        counted, self._counted = self._counted, []
        sums: dict[str, dict[str, dict[str, float]]] = {}
        if not counted:
            return sums
        codes, anchors, partners, amounts = (
            np.concatenate(part) for part in zip(*counted, strict=True)
        )
        n = len(self.ids)
        keys, inverse = np.unique((codes * n + anchors) * n + partners, return_inverse=True)
        totals = np.bincount(inverse, weights=amounts, minlength=len(keys)).tolist()
        ids = self.ids
        partner_ids = [ids[number] for number in (keys % n).tolist()]
        lists = keys // n
        bounds = [*np.flatnonzero(np.diff(lists, prepend=-1)).tolist(), len(keys)]
        for begin, end in pairwise(bounds):
            code, anchor = divmod(int(lists[begin]), n)
            sums.setdefault(self.relations[code], {})[ids[anchor]] = dict(
                zip(partner_ids[begin:end], totals[begin:end], strict=True)
            )
        return sums

    def take_long(self) -> list[tuple[str, str]]:
        """The (relation, anchor) lists marked long since the last call, unmarked."""
        self.flush()
        return [self.owner(row) for row in self.arena.take_long()]

    def owner(self, row: int) -> tuple[str, str]:
        """The (relation, anchor) of a row."""
        code, anchor = self.arena.owner[row].tolist()
        return self.relations[code], self.ids[anchor]

    def load(self, relation: str, anchor: str, partners: Mapping[str, float]) -> None:
        """The anchor's list holds ``partners`` (read from a store) instead."""
        self.flush()
        row = self._row(self.code[relation], int(self.numbers([anchor])[0]))
        self.arena.replace(row, self.numbers(partners, np.int32), list(partners.values()))

    # --- reading ------------------------------------------------------------------------------
    def partners(self, relation: str, anchor: str) -> dict[str, float]:
        """The anchor's partners with their counts ({} when it has none)."""
        row = self.row(relation, anchor)
        return {} if row is None else self._partners_of(row)

    def snapshot(self) -> dict[str, dict[str, dict[str, float]]]:
        """relation -> anchor -> partner -> count, every list with a partner (a copy)."""
        self.flush()
        out: dict[str, dict[str, dict[str, float]]] = {r: {} for r in self.relations}
        for row in range(self.arena.rows):
            if self.arena.size[row]:
                relation, anchor = self.owner(row)
                out[relation][anchor] = self._partners_of(row)
        return out

    def _partners_of(self, row: int) -> dict[str, float]:
        numbers, counts = self.arena.view(row)
        ids = self.ids
        return {ids[n]: c for n, c in zip(numbers.tolist(), counts.tolist(), strict=True)}
