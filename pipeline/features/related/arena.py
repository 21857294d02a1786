"""Co-occurrence lists in one pair of arrays: each list a block of an arena, kept up by compiled loops.

The co-occurrence counts (``counts.py``) hold, for each (relation, anchor), the anchor's
partners (item numbers) with their counts. On a dense log an event pairs with dozens of
items, so these lists change by tens of entries per event and are read by the dozen per
for-you list. Held as a dictionary per list, each pair cost a Python update (and a
second one in a copy the scoring read); here every list is a block of two shared arrays
(``partner``, ``count``): an event's or a batch's pairs are one compiled call, and a read
hands the blocks' places to the scoring loops, which read them where they lie.

A new list gets a block of ``SMALLEST_BLOCK`` entries at the arena's end, and a list that
outgrows its block moves to a block twice as large there, both within the compiled call
while the arrays have room. When a block no longer fits, the call returns and the live
blocks are copied, one after the other, into new arrays at least twice as large as they
are (so the blocks left behind are reclaimed, and a copy happens once per as many entries
placed as are held). Arrays handed out
(:meth:`PartnerArena.view`, and ``partner`` and ``count`` themselves) are never written by
a move or a copy; a later :func:`add_amounts` writes into the live blocks.

Compiled with :func:`pipeline.core.compiled.compiled`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pipeline.core.compiled import compiled

# A new list's smallest block; blocks double as their lists grow.
SMALLEST_BLOCK = 16
# Places in ``PartnerArena.meta``: rows handed out, the end of the arrays' used part, and
# the capacity of the live rows' blocks.
ROWS, END, HELD = 0, 1, 2


@compiled
def add_amounts(
    partner: np.ndarray,
    count: np.ndarray,
    start: np.ndarray,
    size: np.ndarray,
    capacity: np.ndarray,
    live: np.ndarray,
    long: np.ndarray,
    owner: np.ndarray,
    meta: np.ndarray,
    row_of: np.ndarray,
    codes: np.ndarray,
    anchors: np.ndarray,
    partners: np.ndarray,
    amounts: np.ndarray,
    longest: int,
    begin: int,
) -> int:
    """Add, for each ``j`` from ``begin``, ``amounts[j]`` to the count of ``partners[j]``
    in the list of ``row_of[codes[j], anchors[j]]`` (the rule of ``CoOccurrence.apply``):
    a partner not in the list joins it with the amount, unless the amount is negative
    (nothing to take); a negative amount that takes a count to 0 or below removes the
    partner. A list left longer than ``longest`` is marked in ``long``. A list not made yet
    (-1) is made, and a full one moved, at the arena's end; when the row arrays or the
    entry arrays have no room left, returns that ``j`` (the caller makes room,
    :meth:`PartnerArena.make_room`, and calls again from there); returns -1 when every
    amount is added. A list's partners ascend, so a partner is found by bisection (a scan
    of a list of 400 cost a tenth of a microsecond a pair, and grew with the cap); one
    joining or leaving moves the entries after it by one."""
    for j in range(begin, partners.shape[0]):
        row = row_of[codes[j], anchors[j]]
        if row < 0:
            row = meta[ROWS]
            if row == start.shape[0] or meta[END] + SMALLEST_BLOCK > partner.shape[0]:
                return j
            meta[ROWS] = row + 1
            start[row] = meta[END]
            size[row] = 0
            capacity[row] = SMALLEST_BLOCK
            live[row] = True
            long[row] = False
            owner[row, 0] = codes[j]
            owner[row, 1] = anchors[j]
            meta[END] += SMALLEST_BLOCK
            meta[HELD] += SMALLEST_BLOCK
            row_of[codes[j], anchors[j]] = row
        first = start[row]
        end = first + size[row]
        wanted = partners[j]
        amount = amounts[j]
        # The list's partners ascend: bisection finds the partner or its place.
        at = first
        high = end
        while at < high:
            middle = (at + high) >> 1
            if partner[middle] < wanted:
                at = middle + 1
            else:
                high = middle
        if at < end and partner[at] == wanted:
            held = count[at]
            if amount < 0 and held + amount <= 0:
                for k in range(at, end - 1):
                    partner[k] = partner[k + 1]
                    count[k] = count[k + 1]
                size[row] -= 1
            else:
                count[at] = held + amount
        elif amount >= 0:
            if size[row] == capacity[row]:
                block = 2 * capacity[row]
                if meta[END] + block > partner.shape[0]:
                    return j
                moved = meta[END]
                for k in range(size[row]):
                    partner[moved + k] = partner[first + k]
                    count[moved + k] = count[first + k]
                meta[END] += block
                meta[HELD] += block - capacity[row]
                start[row] = moved
                capacity[row] = block
                at += moved - first
                end = moved + size[row]
            for k in range(end, at, -1):
                partner[k] = partner[k - 1]
                count[k] = count[k - 1]
            partner[at] = wanted
            count[at] = amount
            size[row] += 1
        if size[row] > longest:
            long[row] = True
    return -1


@compiled
def _reclaim(
    partner: np.ndarray,
    count: np.ndarray,
    start: np.ndarray,
    size: np.ndarray,
    capacity: np.ndarray,
    live: np.ndarray,
    new_partner: np.ndarray,
    new_count: np.ndarray,
) -> int:
    """Copy the blocks of the ``live`` lists one after the other into the new arrays,
    updating ``start``; returns the end of the last block."""
    end = 0
    for row in range(start.shape[0]):
        if not live[row]:
            continue
        first = start[row]
        for k in range(size[row]):
            new_partner[end + k] = partner[first + k]
            new_count[end + k] = count[first + k]
        start[row] = end
        end += capacity[row]
    return end


class PartnerArena:
    """Lists of (partner, count) entries, partners ascending, each a block of the shared
    ``partner`` and ``count`` arrays: ``start[row]``, ``size[row]`` entries, room for
    ``capacity[row]``;
    ``owner[row]`` says whose list it is (two numbers, the caller's). Rows are never
    freed."""

    def __init__(self, entries: int = 4096, rows: int = 256) -> None:
        self.partner = np.zeros(entries, dtype=np.int32)
        self.count = np.zeros(entries, dtype=np.float64)
        self.start = np.zeros(rows, dtype=np.int64)
        self.size = np.zeros(rows, dtype=np.int64)
        self.capacity = np.zeros(rows, dtype=np.int64)
        self.live = np.zeros(rows, dtype=np.bool_)
        # Lists left longer than the ``longest`` of an :func:`add_amounts` (see
        # :meth:`take_long`).
        self.long = np.zeros(rows, dtype=np.bool_)
        self.owner = np.full((rows, 2), -1, dtype=np.int64)
        # Rows handed out, the end of the used part, the live rows' capacity (ROWS, END,
        # HELD): an array, so that the compiled calls keep them.
        self.meta = np.zeros(3, dtype=np.int64)

    @property
    def rows(self) -> int:
        """Rows handed out so far."""
        return int(self.meta[ROWS])

    def new(self, owner: tuple[int, int], partners: ArrayLike, counts: ArrayLike) -> int:
        """A new list of ``owner`` holding ``partners`` (distinct, in any order) with
        ``counts``; returns its row."""
        row = self.rows
        if row == len(self.start):
            self._grow_rows()
        self.meta[ROWS] = row + 1
        self.size[row] = self.capacity[row] = 0
        self.long[row] = False
        self.owner[row] = owner
        self._fill(row, *_ascending(partners, counts))
        return row

    def replace(self, row: int, partners: ArrayLike, counts: ArrayLike) -> None:
        """The list of ``row`` holds ``partners`` (distinct, in any order) with ``counts``
        instead (in a new block when they do not fit its own)."""
        ordered, held = _ascending(partners, counts)
        if len(ordered) <= self.capacity[row]:
            first = int(self.start[row])
            self.partner[first : first + len(ordered)] = ordered
            self.count[first : first + len(ordered)] = held
            self.size[row] = len(ordered)
            return
        self.meta[HELD] -= self.capacity[row]
        self.size[row] = self.capacity[row] = 0
        self._fill(row, ordered, held)

    def _fill(self, row: int, partners: np.ndarray, counts: np.ndarray) -> None:
        """Place a block for a list without one, holding ``partners`` with ``counts``."""
        # Not live while its block is placed (a reclaim there copies live blocks only).
        self.live[row] = False
        length = len(partners)
        block = max(SMALLEST_BLOCK, 2 * length)
        self.make_room(block)
        first = int(self.meta[END])
        self.partner[first : first + length] = partners
        self.count[first : first + length] = counts
        self.start[row], self.size[row], self.capacity[row] = first, length, block
        self.live[row] = True
        self.meta[END] += block
        self.meta[HELD] += block

    def make_room(self, block: int) -> None:
        """Room for a new row, and for a block of ``block`` entries at the arena's end. When
        it does not fit, the live blocks are first copied into new arrays at least twice
        the size of what is held and the block (arrays handed out stay as they were)."""
        if self.rows == len(self.start):
            self._grow_rows()
        if self.meta[END] + block <= len(self.partner):
            return
        needed = int(self.meta[HELD]) + block
        size = max(len(self.partner), SMALLEST_BLOCK)  # an arena made empty still doubles
        while size < 2 * needed:
            size *= 2
        partner = np.zeros(size, dtype=np.int32)
        count = np.zeros(size, dtype=np.float64)
        rows = self.rows
        self.meta[END] = _reclaim(
            self.partner,
            self.count,
            self.start[:rows],
            self.size[:rows],
            self.capacity[:rows],
            self.live[:rows],
            partner,
            count,
        )
        self.partner, self.count = partner, count

    def _grow_rows(self) -> None:
        grown = 2 * len(self.start)
        self.start = np.resize(self.start, grown)
        self.size = np.resize(self.size, grown)
        self.capacity = np.resize(self.capacity, grown)
        self.live = np.resize(self.live, grown)
        self.long = np.resize(self.long, grown)
        self.owner = np.resize(self.owner, (grown, 2))

    def take_long(self) -> list[int]:
        """The rows marked long since the last call (ascending), unmarked."""
        rows = np.flatnonzero(self.long[: self.rows])
        self.long[rows] = False
        return rows.tolist()

    def view(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(partners, counts) of a list: views of the arena (see the module doc)."""
        first = int(self.start[row])
        end = first + int(self.size[row])
        return self.partner[first:end], self.count[first:end]


def _ascending(partners: ArrayLike, counts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``partners`` in ascending order (a list's order in the arena), with their counts."""
    ordered = np.asarray(partners, dtype=np.int32)
    order = np.argsort(ordered, kind="stable")
    return ordered[order], np.asarray(counts, dtype=np.float64)[order]
