"""The click model's feature indexes, computed without building feature names.

:func:`~pipeline.features.ranking.features.features` names every feature so that tests and
people can read them; hashing those names for every item of every impression was most of the
agent's work. :meth:`FeatureIndexer.batch` gives exactly the same indexes for a whole batch
(tested against ``model.indexes(features(...))``) far faster: the parts that depend only on
the item, a category, the context or the position are cached, and the compiled
:func:`~pipeline.features.ranking.kernels.gather_indexes` writes each observation's indexes,
continuing a CRC-32 from the user's prefix for the user-crossed features
(``crc32(b, crc32(a)) == crc32(a + b)``) instead of formatting and hashing a new string."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.features.ranking.features import (
    attribute_crosses,
    click_position,
    context_features,
    device_of,
    position_bucket,
    with_time,
)
from pipeline.features.ranking.kernels import crc32_table, gather_indexes

# Cached entries per table before it is emptied (memory bound; a miss only costs a hash).
CACHE_LIMIT = 200_000
# Cached contexts: far fewer, as a context is large (up to 32 keys of 256 characters, about
# 15 KB cached) and may be unique per request (an id in it), while the usual ones repeat.
CONTEXT_CACHE_LIMIT = 5_000
CRC32_TABLE = crc32_table()


@dataclass(frozen=True, slots=True)
class IndexedBatch:
    """Observations as indexes: observation ``o``'s are ``flat[offsets[o]:offsets[o + 1]]``,
    with ``clicked[o]`` (1.0 or 0.0) and weight ``weights[o]`` (int64, int64, float64s)."""

    flat: np.ndarray
    offsets: np.ndarray
    clicked: np.ndarray
    weights: np.ndarray


class FeatureIndexer:
    """Weight indexes of features, for a model hashing with ``salt`` into ``n_bits`` bits."""

    def __init__(self, salt: int, n_bits: int) -> None:
        self.salt = salt
        self.mask = (1 << n_bits) - 1
        self.bias = self._index(b"bias")
        self._items: dict[str, tuple[int, bytes]] = {}
        self._categories: dict[str, tuple[int, bytes, int]] = {}
        self._cat_devices: dict[tuple[str, str], int] = {}
        self._contexts: dict[tuple[tuple[str, Any], ...], tuple[list[int], str | None]] = {}
        self._positions: dict[int, int] = {}
        self._position_run: list[int] = []
        self._user_cats: dict[tuple[str, str], int] = {}
        self._user_attrs: dict[tuple[str, str], int] = {}

    def _index(self, name: bytes) -> int:
        return zlib.crc32(name, self.salt) & self.mask

    def _cached(self, table: dict[Any, Any], key: Any, value: Any, limit: int = 0) -> Any:
        if len(table) >= (limit or CACHE_LIMIT):
            table.clear()
        table[key] = value
        return value

    def _context(self, context: Mapping[str, Any]) -> tuple[list[int], str | None]:
        """The indexes of the context's features, and its device (None: none)."""
        signature = tuple(context.items())
        found = self._contexts.get(signature)
        if found is None:
            indexes = [self._index(name.encode()) for name in context_features(context)]
            found = self._cached(
                self._contexts, signature, (indexes, device_of(context)), CONTEXT_CACHE_LIMIT
            )
        return found

    def _item(self, item_id: str) -> tuple[int, bytes]:
        """``item=`` index and the id's bytes."""
        item = self._items.get(item_id)
        if item is None:
            raw = item_id.encode()
            item = self._cached(self._items, item_id, (self._index(b"item=" + raw), raw))
        return item

    def _category(self, category: str) -> tuple[int, bytes, int]:
        """``cat=`` index, the category's bytes, and the CRC after ``cat_device={category}|``."""
        found = self._categories.get(category)
        if found is None:
            raw = category.encode()
            state = zlib.crc32(b"cat_device=" + raw + b"|", self.salt)
            found = self._cached(
                self._categories, category, (self._index(b"cat=" + raw), raw, state)
            )
        return found

    def _position(self, position: int) -> int:
        index = self._positions.get(position)
        if index is None:
            name = f"pos={position_bucket(position)}".encode()
            index = self._cached(self._positions, position, self._index(name))
        return index

    def _leading_positions(self, count: int) -> list[int]:
        """The position indexes of positions ``0..count - 1``."""
        run = self._position_run
        while len(run) < count:
            run.append(self._position(len(run)))
        return run[:count]

    def _attribute_indexes(
        self,
        user_attributes: Sequence[str],
        categories: Sequence[str],
        item_attributes: Sequence[str],
    ) -> list[int]:
        """The indexes of the ``uattr_cat=`` then ``uattr_iattr=`` features."""
        out = []
        for attribute in user_attributes:
            for category in categories:
                key = (attribute, category)
                index = self._user_cats.get(key)
                if index is None:
                    name = f"uattr_cat={attribute}|{category}".encode()
                    index = self._cached(self._user_cats, key, self._index(name))
                out.append(index)
        for key in attribute_crosses(user_attributes, item_attributes):
            index = self._user_attrs.get(key)
            if index is None:
                name = f"uattr_iattr={key[0]}|{key[1]}".encode()
                index = self._cached(self._user_attrs, key, self._index(name))
            out.append(index)
        return out

    def batch(
        self,
        events: Iterable[Any],
        categories_of_item: Mapping[str, Sequence[str]],
        impression_weight: float,
        click_weight: float,
        attributes_of_user: Mapping[str, Sequence[str]] | None = None,
        attributes_of_item: Mapping[str, Sequence[str]] | None = None,
    ) -> IndexedBatch:
        """The indexes of :func:`~pipeline.features.ranking.features.observations` of each of
        ``events`` in turn (the user's attributes from ``attributes_of_user``; missing:
        none), as one :class:`IndexedBatch`.

        Python only gathers what an event and an item share (CRC states, cached indexes, the
        strings to hash); the compiled :func:`~pipeline.features.ranking.kernels.gather_indexes`
        writes every observation's indexes, continuing the CRCs of the user-crossed features.
        """
        attributes_of_user = attributes_of_user or {}
        item_attributes = attributes_of_item or {}
        crc32, salt = zlib.crc32, self.salt
        strings = _BatchStrings(self, categories_of_item)
        number = strings.item
        # Per event: the CRC states the user-crossed features continue, the context's
        # indexes, the device's string, its observations (a range of them), its position
        # (-2: each observation's own, shown in a list; -1: none), label and weight.
        user_item: list[int] = []
        user_cat: list[int] = []
        context_first, context = [0], []
        device_lo: list[int] = []
        device_hi: list[int] = []
        observation_first = [0]
        positions: list[int] = []
        clicked: list[float] = []
        weights: list[float] = []
        # Per observation: its item's number, and the indexes its user's attributes add
        # (None until an event's user has some).
        shown_items: list[int] = []
        extra_first: list[int] | None = None
        extra: list[int] = []
        longest = 0
        for event in events:
            event_type = event.event_type
            if event_type == "impression" and impression_weight > 0 and event.items:
                shown = event.items
            elif event_type == "click" and event.item_id is not None and click_weight > 0:
                shown = (event.item_id,)
            else:
                continue
            full_context = with_time(event.context or {}, event.timestamp_ms)
            indexes, device = self._context(full_context)
            user = event.user_id.encode()
            user_item.append(crc32(b"user_item=" + user + b"|", salt))
            user_cat.append(crc32(b"user_cat=" + user + b"|", salt))
            context.extend(indexes)
            context_first.append(len(context))
            lo, hi = (-1, -1) if device is None else strings.device(device)
            device_lo.append(lo)
            device_hi.append(hi)
            shown_items.extend([number(item_id) for item_id in shown])
            observation_first.append(len(shown_items))
            if event_type == "impression":
                positions.append(-2)
                longest = max(longest, len(shown))
                clicked.append(0.0)
                weights.append(impression_weight)
            else:
                position = click_position(full_context)
                positions.append(-1 if position is None else self._position(position))
                clicked.append(1.0)
                weights.append(click_weight)
            user_attributes = attributes_of_user.get(event.user_id, ())
            if user_attributes:
                if extra_first is None:
                    # Every observation before this one adds nothing.
                    extra_first = [0] * (len(shown_items) - len(shown) + 1)
                for item_id in shown:
                    extra.extend(
                        self._attribute_indexes(
                            user_attributes,
                            categories_of_item.get(item_id, ()),
                            item_attributes.get(item_id, ()),
                        )
                    )
                    extra_first.append(len(extra))
            elif extra_first is not None:
                extra_first.extend([len(extra)] * len(shown))
        if extra_first is None:
            extra_first = [0] * (len(shown_items) + 1)
        flat, offsets = gather_indexes(
            (np.frombuffer(bytes(strings.blob), dtype=np.uint8), CRC32_TABLE),
            _int64s(strings.item_index, strings.item_lo, strings.item_hi, strings.item_first),
            _int64s(
                strings.category_index,
                strings.category_lo,
                strings.category_hi,
                strings.device_state,
            ),
            _int64s(
                user_item,
                user_cat,
                context_first,
                context,
                device_lo,
                device_hi,
                observation_first,
                positions,
            ),
            _int64s(shown_items, extra_first, extra),
            _int64(self._leading_positions(longest)),
            self.bias,
            self.mask,
        )
        counts = np.diff(_int64(observation_first))
        return IndexedBatch(
            flat,
            offsets,
            np.repeat(np.array(clicked, dtype=np.float64), counts),
            np.repeat(np.array(weights, dtype=np.float64), counts),
        )


def _int64(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _int64s(*lists: list[int]) -> tuple[np.ndarray, ...]:
    return tuple(np.array(values, dtype=np.int64) for values in lists)


class _BatchStrings:
    """One batch's items, categories and devices, numbered, their strings in one blob."""

    def __init__(self, indexer: FeatureIndexer, categories_of_item: Mapping[str, Sequence[str]]):
        self.indexer = indexer
        self.categories_of_item = categories_of_item
        self.blob = bytearray()
        self.numbers: dict[str, int] = {}
        self.ranges: dict[str, tuple[int, int]] = {}
        self.item_index: list[int] = []
        self.item_lo: list[int] = []
        self.item_hi: list[int] = []
        self.item_first = [0]
        self.category_index: list[int] = []
        self.category_lo: list[int] = []
        self.category_hi: list[int] = []
        self.device_state: list[int] = []

    def _range(self, raw: bytes) -> tuple[int, int]:
        lo = len(self.blob)
        self.blob += raw
        return lo, len(self.blob)

    def device(self, device: str) -> tuple[int, int]:
        found = self.ranges.get(device)
        if found is None:
            found = self.ranges[device] = self._range(device.encode())
        return found

    def item(self, item_id: str) -> int:
        """The item's number in this batch (its strings and categories added at first)."""
        number = self.numbers.get(item_id)
        if number is not None:
            return number
        number = self.numbers[item_id] = len(self.item_index)
        index, raw = self.indexer._item(item_id)
        lo, hi = self._range(raw)
        self.item_index.append(index)
        self.item_lo.append(lo)
        self.item_hi.append(hi)
        for category in self.categories_of_item.get(item_id, ()):
            index, raw, state = self.indexer._category(category)
            lo, hi = self._range(raw)
            self.category_index.append(index)
            self.category_lo.append(lo)
            self.category_hi.append(hi)
            self.device_state.append(state)
        self.item_first.append(len(self.category_index))
        return number
