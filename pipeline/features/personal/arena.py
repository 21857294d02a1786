"""Partner lists in one pair of arrays: each list a block of an arena, kept up by compiled loops.

The neighbour index (``neighbours.py``) holds, for each (relation, anchor) it has built, the
anchor's partners as model indexes with their co-occurrence counts. On a dense log an event
pairs with dozens of items, so these lists change by tens of entries per event and are read
by the dozen per for-you list. Held as one numpy array pair per list, each change was a
dictionary lookup and a numpy scalar update (about 1.7 µs a pair, the largest part of
learning), and each read joined the lists into new arrays. Here every list is a block of
two shared arrays (``partner``, ``count``): a batch of changes is one compiled call, and a
read hands the blocks' places to the scoring loop, which reads them where they lie.

A list that outgrows its block moves to a block twice as large at the arena's end. When a
block no longer fits there, the live blocks are copied, one after the other, into new
arrays at least twice as large as they are (so the blocks left behind are reclaimed, and a
copy happens once per as many entries placed as are held). Arrays handed out
(:meth:`PartnerArena.view`, and ``partner`` and ``count`` themselves) are never written by
a move or a copy; a later :meth:`PartnerArena.set` writes into the live blocks.

Compiled with :func:`pipeline.core.compiled.compiled`.
"""

from __future__ import annotations

import numpy as np

from pipeline.core.compiled import compiled

# A new list's smallest block; blocks double as their lists grow.
SMALLEST_BLOCK = 16


@compiled
def set_entries(
    partner: np.ndarray,
    count: np.ndarray,
    start: np.ndarray,
    size: np.ndarray,
    capacity: np.ndarray,
    rows: np.ndarray,
    partners: np.ndarray,
    values: np.ndarray,
    begin: int,
) -> int:
    """Set, for each ``j`` from ``begin``, the count of ``partners[j]`` in list ``rows[j]``
    to ``values[j]``, adding the partner at the list's end when it is not there. Stops at
    the first list whose block is full and returns that ``j`` (the caller moves the list
    and calls again from there); returns -1 when every entry is set. A list is scanned for
    the partner: the counts trim lists to a few hundred entries, so a scan is short."""
    for j in range(begin, rows.shape[0]):
        row = rows[j]
        first = start[row]
        end = first + size[row]
        wanted = partners[j]
        at = end
        for slot in range(first, end):
            if partner[slot] == wanted:
                at = slot
                break
        if at == end:
            if size[row] == capacity[row]:
                return j
            partner[at] = wanted
            size[row] += 1
        count[at] = values[j]
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
    """Lists of (model index, count) entries, each a block of the shared ``partner`` and
    ``count`` arrays: ``start[row]``, ``size[row]`` entries, room for ``capacity[row]``."""

    def __init__(self, entries: int = 4096) -> None:
        self.partner = np.zeros(entries, dtype=np.int32)
        self.count = np.zeros(entries, dtype=np.float64)
        self.start = np.zeros(256, dtype=np.int64)
        self.size = np.zeros(256, dtype=np.int64)
        self.capacity = np.zeros(256, dtype=np.int64)
        self.live = np.zeros(256, dtype=np.bool_)
        self._rows = 0  # rows handed out so far (live or freed)
        self._free: list[int] = []  # rows freed, handed out again
        self._end = 0  # the arena's used part
        self._held = 0  # the capacity of the live rows' blocks

    def new(self, partners: list[int], counts: list[float]) -> int:
        """A new list holding ``partners`` with ``counts``; returns its row."""
        if self._free:
            row = self._free.pop()
        else:
            row = self._rows
            self._rows += 1
            if row == len(self.start):
                grown = 2 * row
                self.start = np.resize(self.start, grown)
                self.size = np.resize(self.size, grown)
                self.capacity = np.resize(self.capacity, grown)
                self.live = np.resize(self.live, grown)
        # Not live while its block is placed (a reclaim there copies live blocks only).
        self.live[row] = False
        self.size[row] = self.capacity[row] = 0
        length = len(partners)
        block = max(SMALLEST_BLOCK, 2 * length)
        first = self._place(block)
        self.partner[first : first + length] = partners
        self.count[first : first + length] = counts
        self.start[row], self.size[row], self.capacity[row] = first, length, block
        self.live[row] = True
        self._held += block
        return row

    def drop(self, row: int) -> None:
        """Free a list (its block is reclaimed later)."""
        self.live[row] = False
        self.size[row] = 0
        self._held -= int(self.capacity[row])
        self.capacity[row] = 0
        self._free.append(row)

    def set(self, rows: list[int], partners: list[int], values: list[float]) -> None:
        """Set each (list, partner) entry's count (see :func:`set_entries`). A list dropped
        has no block to set into: a ValueError (growing it would never end)."""
        row_array = np.asarray(rows, dtype=np.int64)
        if not self.live[row_array].all():
            raise ValueError("an entry names a list that was dropped")
        partner_array = np.asarray(partners, dtype=np.int32)
        value_array = np.asarray(values, dtype=np.float64)
        begin = 0
        while True:
            begin = set_entries(
                self.partner,
                self.count,
                self.start,
                self.size,
                self.capacity,
                row_array,
                partner_array,
                value_array,
                begin,
            )
            if begin < 0:
                return
            self._move(int(row_array[begin]))

    def view(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(model indexes, counts) of a list: views of the arena (see the module doc)."""
        first = int(self.start[row])
        end = first + int(self.size[row])
        return self.partner[first:end], self.count[first:end]

    def _move(self, row: int) -> None:
        """Move a full list to a block twice as large."""
        length = int(self.size[row])
        block = 2 * int(self.capacity[row])
        old = int(self.start[row])
        # Read before placing: a reclaim moves every block (this one too).
        partners = self.partner[old : old + length].copy()
        counts = self.count[old : old + length].copy()
        self._held -= int(self.capacity[row])
        self.capacity[row] = 0
        self.live[row] = False
        first = self._place(block)
        self.partner[first : first + length] = partners
        self.count[first : first + length] = counts
        self.start[row], self.capacity[row] = first, block
        self.live[row] = True
        self._held += block

    def _place(self, block: int) -> int:
        """The start of a free block of ``block`` entries at the arena's end. When it does not
        fit, the live blocks are first copied into new arrays at least twice the size of
        what is held and the block (arrays handed out stay as they were)."""
        if self._end + block <= len(self.partner):
            first = self._end
            self._end += block
            return first
        needed = self._held + block
        size = max(len(self.partner), SMALLEST_BLOCK)  # an arena made empty still doubles
        while size < 2 * needed:
            size *= 2
        partner = np.zeros(size, dtype=np.int32)
        count = np.zeros(size, dtype=np.float64)
        rows = self._rows
        self._end = _reclaim(
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
        first = self._end
        self._end += block
        return first
