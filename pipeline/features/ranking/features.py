"""The click model's features: what showing an item to a user in a context looks like.

Names, before hashing (``model.py`` hashes them), so they are readable in tests and stable
across processes. Pure: the standard library only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

# Context key of a click that carries the display position of the clicked item; it is the
# position feature, never a context feature.
POSITION_KEY = "position"
# Context key crossed with each category (category x device).
DEVICE_KEY = "device"
# Positions below this get a feature each; later ones share power-of-two buckets.
EXACT_POSITIONS = 10
# Small non-negative whole numbers in the context keep their value; others are bucketed.
EXACT_NUMBERS = 16
# Context keys derived from the time of an event (learning) or of a request (serving):
# the hour of the day (0-23) and the day of the week (0 = Monday), both in UTC.
HOUR_KEY = "time.hour"
WEEKDAY_KEY = "time.weekday"
_MS_PER_HOUR = 3_600_000
# 1970-01-01 was a Thursday (weekday 3).
_EPOCH_WEEKDAY = 3
# User attribute values crossed with each item category, at most (bounds each observation).
MAX_USER_ATTRIBUTES = 16
# Item attribute values crossed with each user attribute value, at most.
MAX_ITEM_ATTRIBUTES = 8
# (user attribute, item attribute) crosses per observation, at most (the first in order):
# the click model's cost per shown item grows with them.
MAX_ATTRIBUTE_CROSSES = 32


def attribute_crosses(
    user_attributes: Sequence[str], item_attributes: Sequence[str]
) -> list[tuple[str, str]]:
    """The (user attribute, item attribute) pairs crossed for one observation: every pair
    in order (user attributes outer), the first :data:`MAX_ATTRIBUTE_CROSSES`."""
    if not user_attributes or not item_attributes:
        return []
    return list(
        itertools.islice(itertools.product(user_attributes, item_attributes), MAX_ATTRIBUTE_CROSSES)
    )


def _number_bucket(value: float) -> str:
    """Small whole numbers as themselves, others as sign and power-of-two magnitude."""
    if not math.isfinite(value):
        return "nan"
    if 0 <= value < EXACT_NUMBERS and value == int(value):
        return str(int(value))
    # frexp: |value| lies in [2**(e-1), 2**e).
    exponent = math.frexp(abs(value))[1]
    return f"{'-' if value < 0 else '+'}2^{exponent}"


def position_bucket(position: int) -> str:
    """Display position (0 = first) to its feature value: exact up to 9, then buckets."""
    if position < EXACT_POSITIONS:
        return str(position)
    return f"2^{math.frexp(position)[1]}"


def context_features(context: Mapping[str, Any]) -> list[str]:
    """Features of the request context: one per string or number value.

    ``ctx:{key}={value}`` for strings, ``ctx:{key}#{bucket}`` for numbers (see
    :func:`_number_bucket`). The ``position`` key is skipped: it is the position feature.
    Other values (lists, objects, None) are ignored. A key containing ``=`` or ``#`` may
    alias another key's name: at worst one more hash collision.
    """
    out: list[str] = []
    for key, value in context.items():
        if key == POSITION_KEY:
            continue
        if isinstance(value, str):
            out.append(f"ctx:{key}={value}")
        elif isinstance(value, int | float):
            out.append(f"ctx:{key}#{_number_bucket(float(value))}")
    return out


def with_time(context: Mapping[str, Any], timestamp_ms: int) -> dict[str, Any]:
    """``context`` with the derived time keys (:data:`HOUR_KEY`, :data:`WEEKDAY_KEY`) set
    from ``timestamp_ms``, as strings so that each hour and day is its own feature. The
    same derivation runs when learning (event time) and when ranking (request time)."""
    hours = timestamp_ms // _MS_PER_HOUR
    derived = dict(context)
    derived[HOUR_KEY] = str(hours % 24)
    derived[WEEKDAY_KEY] = str((hours // 24 + _EPOCH_WEEKDAY) % 7)
    return derived


def attribute_strings(attributes: Mapping[str, Any], limit: int) -> tuple[str, ...]:
    """Attributes (of a user's or an item's record) as ``{name}={value}`` strings, one per
    string, number or boolean value (lists give one per element), sorted, at most ``limit``.
    Numbers are bucketed like context numbers (``{name}#{bucket}``); other values (objects,
    None) are left out."""
    out: set[str] = set()
    for name, value in attributes.items():
        for entry in value if isinstance(value, list) else (value,):
            if isinstance(entry, bool):
                out.add(f"{name}={'true' if entry else 'false'}")
            elif isinstance(entry, str):
                out.add(f"{name}={entry}")
            elif isinstance(entry, int | float):
                out.add(f"{name}#{_number_bucket(float(entry))}")
    return tuple(sorted(out)[:limit])


def user_attribute_features(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """A user's attributes (the users feature's records) as :func:`attribute_strings`, at
    most :data:`MAX_USER_ATTRIBUTES`."""
    return attribute_strings(attributes, MAX_USER_ATTRIBUTES)


def item_attribute_features(attributes: Mapping[str, Any]) -> tuple[str, ...]:
    """An item's catalog attributes as :func:`attribute_strings`, at most
    :data:`MAX_ITEM_ATTRIBUTES`."""
    return attribute_strings(attributes, MAX_ITEM_ATTRIBUTES)


def device_of(context: Mapping[str, Any]) -> str | None:
    device = context.get(DEVICE_KEY)
    if isinstance(device, str):
        return device
    if isinstance(device, int | float):
        return _number_bucket(float(device))
    return None


def features(
    user_id: str,
    item_id: str,
    categories: Sequence[str],
    context: Mapping[str, Any],
    position: int | None,
    user_attributes: Sequence[str] = (),
    item_attributes: Sequence[str] = (),
) -> list[str]:
    """The binary features of showing ``item_id`` to ``user_id`` (names, before hashing).

    In order:

    - ``bias``;
    - ``item={item_id}``;
    - ``cat={category}`` for each catalog category of the item;
    - ``user_cat={user_id}|{category}`` for each category (a user's taste for a category);
    - ``user_item={user_id}|{item_id}``;
    - the context features of :func:`context_features` (device, page, locale, ...);
    - ``cat_device={category}|{device}`` for each category when the context has a device;
    - ``pos={bucket}`` when ``position`` is not None (training only; see the module doc);
    - ``uattr_cat={attribute}|{category}`` for each of ``user_attributes`` (strings of
      :func:`user_attribute_features`) and each category: what users like this one (their
      country, membership, ...) choose, which carries over to users never seen before;
    - ``uattr_iattr={attribute}|{item attribute}`` for the pairs of ``user_attributes`` and
      ``item_attributes`` (:func:`item_attribute_features`) that :func:`attribute_crosses`
      keeps: the same across item attributes (brand, material, price band, ...), for items
      of any category.

    Ids never contain ``|`` (``pipeline.core.ids.ID_PATTERN``), so the crossed names are
    unambiguous. The function is pure: same arguments, same list.
    """
    out = ["bias", f"item={item_id}", f"user_item={user_id}|{item_id}"]
    for category in categories:
        out.append(f"cat={category}")
        out.append(f"user_cat={user_id}|{category}")
    if context:
        out.extend(context_features(context))
        device = device_of(context)
        if device is not None:
            out.extend(f"cat_device={category}|{device}" for category in categories)
    if position is not None:
        out.append(f"pos={position_bucket(position)}")
    for attribute in user_attributes:
        out.extend(f"uattr_cat={attribute}|{category}" for category in categories)
    crosses = attribute_crosses(user_attributes, item_attributes)
    out.extend(f"uattr_iattr={attribute}|{value}" for attribute, value in crosses)
    return out


def click_position(context: Mapping[str, Any]) -> int | None:
    """The display position a click's context carries (0 = first), or None if absent/bad."""
    value = context.get(POSITION_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


Observation = tuple[list[str], bool, float]


def observations(
    event: Any,
    categories_of_item: Mapping[str, Sequence[str]],
    impression_weight: float,
    click_weight: float,
    user_attributes: Sequence[str] = (),
    attributes_of_item: Mapping[str, Sequence[str]] | None = None,
) -> list[Observation]:
    """What one event teaches the click model: ``(features, clicked, weight)`` triples.

    An ``impression`` gives every shown item ``clicked=False`` with ``impression_weight`` at
    its display position (index in ``event.items``, 0 = first). A ``click`` gives its item
    ``clicked=True`` with ``click_weight`` at ``context["position"]`` (None when missing).
    The context gains the event's hour and weekday (:func:`with_time`). Other event types
    teach nothing. ``event`` is a :class:`pipeline.core.events.Event` (any
    object with ``event_type``, ``user_id``, ``item_id``, ``items`` and ``context``); items
    missing from ``categories_of_item`` have no categories; ``user_attributes`` are the
    event's user's (:func:`user_attribute_features`), ``attributes_of_item`` the items'
    (:func:`item_attribute_features`; missing: none).
    """
    item_attributes = attributes_of_item or {}
    event_type = event.event_type
    if event_type == "impression":
        if impression_weight <= 0:
            return []
        context = with_time(event.context or {}, event.timestamp_ms)
        return [
            (
                features(
                    event.user_id,
                    item_id,
                    categories_of_item.get(item_id, ()),
                    context,
                    p,
                    user_attributes,
                    item_attributes.get(item_id, ()),
                ),
                False,
                impression_weight,
            )
            for p, item_id in enumerate(event.items)
        ]
    if event_type == "click" and event.item_id is not None and click_weight > 0:
        item_id = event.item_id
        context = with_time(event.context or {}, event.timestamp_ms)
        names = features(
            event.user_id,
            item_id,
            categories_of_item.get(item_id, ()),
            context,
            click_position(context),
            user_attributes,
            item_attributes.get(item_id, ()),
        )
        return [(names, True, click_weight)]
    return []
