"""Filters: which items a scenario may serve, as pure functions of an item's catalog fields.

A :class:`Filter` composes every rule of one request: the user's exclusions (always), explicit
``exclude`` ids, availability, category paths, attribute conditions with request parameters,
and the diversity caps. :meth:`Filter.admits` says whether one item may be served at all;
:class:`Diversity` tracks the caps while a list is filled. Nothing here reads Redis.

Category paths: ``shoes`` matches ``shoes`` and every category below it (``shoes/running``);
the separator is ``/``.

Conditions (``where``): ``FIELD OP VALUE``, with ``OP`` one of ``== != < <= > >= in`` and
``not in``; ``VALUE`` a number, a quoted string, ``true``/``false``, a list ``[a, "b", 3]``
or ``$param`` (a request parameter the scenario declares). ``FIELD`` is ``price``,
``created_at`` or an attribute name. An item without the field fails every condition except
``!=`` and ``not in``; a list-valued attribute matches when any of its values does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.ids import InvalidInput
from pipeline.features.catalog.model import CatalogView

OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "not in", "in")
_CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w.-]*)\s+(?P<op>==|!=|<=|>=|<|>|not\s+in|in)\s+(?P<value>.+?)\s*$"
)
_PARAM = re.compile(r"^\$(?P<name>[A-Za-z_]\w*)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
# The separator of category paths: "shoes" is the parent of "shoes/running".
CATEGORY_SEPARATOR = "/"

Scalar = str | float | bool


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed ``where`` entry. ``param`` names the request parameter that supplies the
    value (None: ``literal`` is the value)."""

    field: str
    op: str
    literal: Any = None
    param: str | None = None

    def bind(self, params: Mapping[str, Any]) -> BoundCondition | None:
        """The condition with its value; None when its parameter was not sent (skipped)."""
        if self.param is None:
            return BoundCondition(self.field, self.op, self.literal)
        if self.param not in params:
            return None
        return BoundCondition(self.field, self.op, params[self.param])


@dataclass(frozen=True, slots=True)
class BoundCondition:
    field: str
    op: str
    value: Any

    def holds(self, item: CatalogView) -> bool:
        raw = item.value(self.field)
        negated = self.op in ("!=", "not in")
        if raw is None:
            return negated
        values = raw if isinstance(raw, list) else [raw]
        if negated:
            positive = "==" if self.op == "!=" else "in"
            return not any(_compare(v, positive, self.value) for v in values)
        return any(_compare(v, self.op, self.value) for v in values)


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "in":
        options = right if isinstance(right, list | tuple | frozenset | set) else [right]
        return any(_equal(left, option) for option in options)
    if op == "==":
        return _equal(left, right)
    # Ordering compares numbers only: "10" < "9" as text would mislead.
    if isinstance(left, bool) or isinstance(right, bool):
        return False
    if not isinstance(left, int | float) or not isinstance(right, int | float):
        return False
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right if isinstance(left, bool) and isinstance(right, bool) else False
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    return str(left) == str(right)


def parse_literal(text: str) -> Any:
    """A literal of a condition: number, quoted string, true/false, a list, or a bare word."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_literal(part) for part in _split_list(inner)] if inner else []
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        return float(text)
    if any(ch in text for ch in " ,[]\"'$"):
        raise InvalidInput(f"cannot read the value {text!r}")
    return text


def _split_list(inner: str) -> list[str]:
    parts, current, quote = [], "", ""
    for ch in inner:
        if quote:
            current += ch
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
            current += ch
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [part.strip() for part in parts]


def parse_condition(text: str, declared: Collection[str]) -> Condition:
    """Parse one ``where`` entry; ``declared`` are the parameters ``$name`` may use.
    Raises :class:`InvalidInput` with the reason."""
    if not isinstance(text, str):
        raise InvalidInput("a condition is a string such as 'price <= $max_price'")
    match = _CONDITION.match(text)
    if match is None:
        raise InvalidInput(
            f"cannot read the condition {text!r}: expected FIELD OP VALUE with OP one of "
            + ", ".join(OPERATORS)
        )
    op = " ".join(match["op"].split())
    raw_value = match["value"]
    param = _PARAM.match(raw_value)
    if param is not None:
        if param["name"] not in declared:
            raise InvalidInput(f"{text!r} uses ${param['name']}, which params does not declare")
        return Condition(match["field"], op, param=param["name"])
    return Condition(match["field"], op, literal=parse_literal(raw_value))


def in_category(categories: Iterable[str], paths: Collection[str]) -> bool:
    """True when any of ``categories`` is one of ``paths`` or lies below one of them."""
    for category in categories:
        for path in paths:
            if category == path or category.startswith(path + CATEGORY_SEPARATOR):
                return True
    return False


@dataclass(frozen=True, slots=True)
class Filter:
    """Every rule of one request. ``excluded`` holds the user's exclusions, explicit
    ``exclude`` ids and the context items; ``conditions`` are already bound to the request's
    parameters."""

    excluded: frozenset[str] = frozenset()
    available_only: bool = True
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    conditions: tuple[BoundCondition, ...] = ()

    def admits(self, item_id: str, item: CatalogView) -> bool:
        if item_id in self.excluded:
            return False
        if self.available_only and not item.available:
            return False
        if self.categories and not in_category(item.categories, self.categories):
            return False
        if self.exclude_categories and in_category(item.categories, self.exclude_categories):
            return False
        return all(condition.holds(item) for condition in self.conditions)

    def narrowed(
        self, categories: tuple[str, ...], conditions: tuple[BoundCondition, ...]
    ) -> Filter:
        """This filter and, on top, ``categories`` (when given) and ``conditions``: what a
        promotion admits."""
        return Filter(
            self.excluded,
            self.available_only,
            categories or self.categories,
            self.exclude_categories,
            self.conditions + conditions,
        )


@dataclass
class Diversity:
    """At most ``per_category`` items per category and ``per_attribute[name]`` per value of
    that attribute (0 or absent: no cap), counted over the whole list being filled."""

    per_category: int = 0
    per_attribute: Mapping[str, int] = field(default_factory=dict)
    _categories: dict[str, int] = field(default_factory=dict)
    _attributes: dict[tuple[str, str], int] = field(default_factory=dict)

    def _values(self, item: CatalogView) -> list[tuple[str, str]]:
        out = []
        for name in self.per_attribute:
            raw = item.attributes.get(name)
            for value in raw if isinstance(raw, list) else [] if raw is None else [raw]:
                out.append((name, str(value)))
        return out

    def allows(self, item: CatalogView) -> bool:
        if self.per_category and any(
            self._categories.get(c, 0) >= self.per_category for c in item.categories
        ):
            return False
        return all(
            self._attributes.get(pair, 0) < self.per_attribute[pair[0]]
            for pair in self._values(item)
            if self.per_attribute[pair[0]] > 0
        )

    def take(self, item: CatalogView) -> None:
        for category in item.categories:
            self._categories[category] = self._categories.get(category, 0) + 1
        for pair in self._values(item):
            self._attributes[pair] = self._attributes.get(pair, 0) + 1


def request_value(kind: str, raw: list[str], name: str) -> Scalar | list[Scalar]:
    """A declared parameter's value from the query string (``kind``: number, string, bool,
    list). Raises :class:`InvalidInput` naming the parameter."""
    if kind == "list":
        values: list[Scalar] = []
        for entry in raw:
            for part in entry.split(","):
                if part.strip():
                    values.append(_scalar(part.strip()))
        return values
    if len(raw) != 1:
        raise InvalidInput(f"{name} takes one value")
    text = raw[0]
    if kind == "number":
        if not _NUMBER.match(text):
            raise InvalidInput(f"{name} must be a number")
        return float(text)
    if kind == "bool":
        if text not in ("true", "false"):
            raise InvalidInput(f"{name} must be true or false")
        return text == "true"
    if len(text) > 256:
        raise InvalidInput(f"{name} is longer than 256 characters")
    return text


def _scalar(text: str) -> Scalar:
    return float(text) if _NUMBER.match(text) else text
