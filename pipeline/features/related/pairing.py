"""Pairing an event with its user's history, compiled: the rule of
:func:`~pipeline.features.related.model.co_occurrences` on item numbers.

A history's click and conversion entries are kept as one flat array of (``paired_code``:
item number and kind, time) in time order (``UserHistory.paired_entries``), and an event's pairs are written
as numbers straight into the counts' waiting room (``CountLists.waiting``). Per event this
is one compiled call, where the rule in Python walked every distinct item of the history
twice and the counts then numbered each pair's text ids: the cost that grew with the
length of users' histories.
"""

from __future__ import annotations

from array import array

import numpy as np

from pipeline.core.compiled import compiled
from pipeline.features.personal.history import CLICK_KIND, CONVERSION_KIND
from pipeline.features.related.counts import CountLists

# Pairs one pass writes: both directions of each partner (a symmetric relation), the event's
# item to the partner (a click, then a conversion), or the partner to the event's item.
BOTH, FROM_ITEM, TO_ITEM = 0, 1, 2
# What ``params`` holds (:func:`pair_event`).
ITEM, CONVERSION, TIME, STAMP = 0, 1, 2, 3
CLICK_WINDOW, BUY_WINDOW, VIEW_WINDOW = 4, 5, 6
ALSO_CLICKED, ALSO_BOUGHT, VIEWED_THEN_BOUGHT = 7, 8, 9


@compiled
def _first_at(entries: array, count: int, low: int) -> int:
    """The first entry (of ``count``, times ascending) at ``low`` or later."""
    begin, end = 0, count
    while begin < end:
        middle = (begin + end) // 2
        if entries[2 * middle + 1] < low:
            begin = middle + 1
        else:
            end = middle
    return begin


@compiled
def _pass(
    entries: array,
    params: np.ndarray,
    mark: np.ndarray,
    waiting: np.ndarray,
    amounts: np.ndarray,
    length: int,
    own_kind: int,
    partner_kind: int,
    window_low: int,
    window_high: int,
    code: int,
    direction: int,
) -> int:
    """One relation's pairs: partners with an entry of ``partner_kind`` within
    ``[t + window_low, t + window_high]`` of the event's time ``t``, but those already held
    (an own entry of ``own_kind`` at ``t1`` and theirs within ``[t1 + window_low, t1 +
    window_high]``), each once. Returns the waiting count after them."""
    count = len(entries) // 2
    item = params[ITEM]
    held = params[STAMP] + 1
    written = held + 1
    params[STAMP] = written
    own = 2 * item + own_kind
    # Own entries ascend in time, so each scan starts where the last ended: one pass over
    # the history however often the user met the item.
    scanned = 0
    for i in range(count):
        if entries[2 * i] != own:
            continue
        at = entries[2 * i + 1]
        j = max(_first_at(entries, count, at + window_low), scanned)
        while j < count and entries[2 * j + 1] <= at + window_high:
            if entries[2 * j] & 1 == partner_kind:
                mark[entries[2 * j] >> 1] = held
            j += 1
        scanned = j
    t = params[TIME]
    j = _first_at(entries, count, t + window_low)
    while j < count and entries[2 * j + 1] <= t + window_high:
        entry = entries[2 * j]
        j += 1
        partner = entry >> 1
        if entry & 1 != partner_kind or partner == item or mark[partner] >= held:
            continue
        mark[partner] = written
        if direction != TO_ITEM:
            waiting[0, length] = code
            waiting[1, length] = item
            waiting[2, length] = partner
            amounts[length] = 1.0
            length += 1
        if direction != FROM_ITEM:
            waiting[0, length] = code
            waiting[1, length] = partner
            waiting[2, length] = item
            amounts[length] = 1.0
            length += 1
    return length


@compiled
def pair_event(
    entries: array,
    params: np.ndarray,
    mark: np.ndarray,
    waiting: np.ndarray,
    amounts: np.ndarray,
    length: int,
) -> int:
    """Write the pairs an event adds to its user's history (the rule of
    ``co_occurrences``) to ``waiting`` and ``amounts`` from column ``length``; returns the
    count after them.

    ``entries``: the history's click and conversion entries, (``paired_code``, time)
    flattened, times ascending. ``params``: the event's item number, whether it is a
    conversion and its time, the stamp counter (``mark[n]`` below it: nothing this call),
    the three windows in milliseconds and the relations' codes (the indexes above).
    ``mark``: one slot per item number. There must be room for two pairs an entry."""
    conversion = params[CONVERSION] != 0
    own = CONVERSION_KIND if conversion else CLICK_KIND
    near = params[BUY_WINDOW] if conversion else params[CLICK_WINDOW]
    code = params[ALSO_BOUGHT] if conversion else params[ALSO_CLICKED]
    # Entries of the event's kind within the window, either way round: both directions.
    length = _pass(
        entries, params, mark, waiting, amounts, length, own, own, -near, near, code, BOTH
    )
    # A click, then a conversion within the view window: from this click to the partner,
    # or from the partner to this conversion.
    view = params[VIEW_WINDOW]
    low, high, direction = (-view, 0, TO_ITEM) if conversion else (0, view, FROM_ITEM)
    code = params[VIEWED_THEN_BOUGHT]
    return _pass(
        entries, params, mark, waiting, amounts, length, own, 1 - own, low, high, code, direction
    )


class Pairing:
    """Pairs events with their users' histories into ``lists`` (whose numbering the
    histories' entries use), with the windows of ``co_occurrences`` in seconds."""

    def __init__(
        self, lists: CountLists, click_window_s: int, buy_window_s: int, view_window_s: int
    ) -> None:
        self.lists = lists
        self.params = np.zeros(10, dtype=np.int64)
        self.params[CLICK_WINDOW] = click_window_s * 1000
        self.params[BUY_WINDOW] = buy_window_s * 1000
        self.params[VIEW_WINDOW] = view_window_s * 1000
        code = lists.code
        self.params[ALSO_CLICKED] = code["also_clicked"]
        self.params[ALSO_BOUGHT] = code["also_bought"]
        self.params[VIEWED_THEN_BOUGHT] = code["viewed_then_bought"]
        self.mark = np.zeros(256, dtype=np.int64)

    def pair(self, entries: array, item: int, conversion: bool, timestamp_ms: int) -> None:
        """Add the pairs a click (``conversion`` False) or a conversion of item number
        ``item`` at ``timestamp_ms`` adds to the history whose paired entries are
        ``entries`` (before the event joins them)."""
        lists = self.lists
        if len(lists.ids) > len(self.mark):
            grown = np.zeros(2 * len(lists.ids), dtype=np.int64)
            grown[: len(self.mark)] = self.mark
            self.mark = grown
        # Two pairs an entry at most: an entry is a partner in one relation of the two.
        lists.make_room(len(entries))
        params = self.params
        params[ITEM] = item
        params[CONVERSION] = conversion
        params[TIME] = timestamp_ms
        lists.waiting_count = pair_event(
            entries, params, self.mark, lists.waiting, lists.waiting_amounts, lists.waiting_count
        )
