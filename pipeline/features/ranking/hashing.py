"""The click model's feature indexes, computed without building feature names.

:func:`~pipeline.features.ranking.features.features` names every feature so that tests and
people can read them; hashing those names for every item of every impression is most of the
agent's work. :class:`FeatureIndexer` gives exactly the same indexes (tested against
``model.indexes(features(...))``) far faster: the parts that depend only on the item, a
category, the context or the position are cached, and the user-crossed features continue a
CRC-32 from the user's prefix (``crc32(b, crc32(a)) == crc32(a + b)``) instead of formatting
and hashing a new string.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.features.ranking.features import (
    attribute_crosses,
    click_position,
    context_features,
    device_of,
    position_bucket,
    with_time,
)

# Cached entries per table before it is emptied (memory bound; a miss only costs a hash).
CACHE_LIMIT = 200_000
# (weight indexes, clicked, weight) of one observation.
IndexedObservation = tuple[list[int], bool, float]


@dataclass(frozen=True, slots=True)
class EventParts:
    """What every observation of one event shares."""

    user_item: int  # CRC state after "user_item={user}|"
    user_cat: int  # CRC state after "user_cat={user}|"
    context: list[int]  # indexes of the context features
    device: str | None
    attributes: Sequence[str] = ()  # the user's attribute strings


class FeatureIndexer:
    """Weight indexes of features, for a model hashing with ``salt`` into ``n_bits`` bits."""

    def __init__(self, salt: int, n_bits: int) -> None:
        self.salt = salt
        self.mask = (1 << n_bits) - 1
        self.bias = self._index(b"bias")
        self._items: dict[str, tuple[int, bytes]] = {}
        self._categories: dict[str, tuple[int, bytes]] = {}
        self._cat_devices: dict[tuple[str, str], int] = {}
        self._contexts: dict[tuple[tuple[str, Any], ...], list[int]] = {}
        self._positions: dict[int, int] = {}
        self._user_cats: dict[tuple[str, str], int] = {}
        self._user_attrs: dict[tuple[str, str], int] = {}

    def _index(self, name: bytes) -> int:
        return zlib.crc32(name, self.salt) & self.mask

    def _cached(self, table: dict[Any, Any], key: Any, value: Any) -> Any:
        if len(table) >= CACHE_LIMIT:
            table.clear()
        table[key] = value
        return value

    def event(
        self, user_id: str, context: Mapping[str, Any], attributes: Sequence[str] = ()
    ) -> EventParts:
        user = user_id.encode()
        signature = tuple(context.items())
        indexes = self._contexts.get(signature)
        if indexes is None:
            names = context_features(context)
            indexes = self._cached(
                self._contexts, signature, [self._index(n.encode()) for n in names]
            )
        return EventParts(
            zlib.crc32(b"user_item=" + user + b"|", self.salt),
            zlib.crc32(b"user_cat=" + user + b"|", self.salt),
            indexes,
            device_of(context) if context else None,
            attributes,
        )

    def indexes(
        self,
        parts: EventParts,
        item_id: str,
        categories: Sequence[str],
        position: int | None,
        item_attributes: Sequence[str] = (),
    ) -> list[int]:
        """The indexes of ``features(user, item_id, categories, context, position,
        attributes, item_attributes)`` (the user, context and attributes of ``parts``)."""
        crc32, mask = zlib.crc32, self.mask
        item = self._items.get(item_id)
        if item is None:
            raw = item_id.encode()
            item = self._cached(self._items, item_id, (self._index(b"item=" + raw), raw))
        out = [self.bias, item[0], crc32(item[1], parts.user_item) & mask]
        for category in categories:
            cat = self._categories.get(category)
            if cat is None:
                raw = category.encode()
                cat = self._cached(self._categories, category, (self._index(b"cat=" + raw), raw))
            out.append(cat[0])
            out.append(crc32(cat[1], parts.user_cat) & mask)
        out.extend(parts.context)
        if parts.device is not None:
            for category in categories:
                key = (category, parts.device)
                index = self._cat_devices.get(key)
                if index is None:
                    name = f"cat_device={category}|{parts.device}".encode()
                    index = self._cached(self._cat_devices, key, self._index(name))
                out.append(index)
        if position is not None:
            index = self._positions.get(position)
            if index is None:
                name = f"pos={position_bucket(position)}".encode()
                index = self._cached(self._positions, position, self._index(name))
            out.append(index)
        for attribute in parts.attributes:
            for category in categories:
                key = (attribute, category)
                index = self._user_cats.get(key)
                if index is None:
                    name = f"uattr_cat={attribute}|{category}".encode()
                    index = self._cached(self._user_cats, key, self._index(name))
                out.append(index)
        for key in attribute_crosses(parts.attributes, item_attributes):
            index = self._user_attrs.get(key)
            if index is None:
                name = f"uattr_iattr={key[0]}|{key[1]}".encode()
                index = self._cached(self._user_attrs, key, self._index(name))
            out.append(index)
        return out

    def observations(
        self,
        event: Any,
        categories_of_item: Mapping[str, Sequence[str]],
        impression_weight: float,
        click_weight: float,
        user_attributes: Sequence[str] = (),
        attributes_of_item: Mapping[str, Sequence[str]] | None = None,
    ) -> list[IndexedObservation]:
        """:func:`~pipeline.features.ranking.features.observations`, as indexes."""
        event_type = event.event_type
        # Item attributes only cross with user attributes: skip the lookups without them.
        item_attributes = (attributes_of_item or {}) if user_attributes else {}
        if event_type not in ("impression", "click"):
            return []
        context = with_time(event.context or {}, event.timestamp_ms)
        if event_type == "impression":
            if impression_weight <= 0:
                return []
            parts = self.event(event.user_id, context, user_attributes)
            return [
                (
                    self.indexes(
                        parts,
                        item_id,
                        categories_of_item.get(item_id, ()),
                        p,
                        item_attributes.get(item_id, ()),
                    ),
                    False,
                    impression_weight,
                )
                for p, item_id in enumerate(event.items)
            ]
        if event_type == "click" and event.item_id is not None and click_weight > 0:
            parts = self.event(event.user_id, context, user_attributes)
            categories = categories_of_item.get(event.item_id, ())
            indexes = self.indexes(
                parts,
                event.item_id,
                categories,
                click_position(context),
                item_attributes.get(event.item_id, ()),
            )
            return [(indexes, True, click_weight)]
        return []
