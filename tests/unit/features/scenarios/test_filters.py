"""Filters: conditions, category paths, diversity caps and request parameters."""

from __future__ import annotations

import pytest

from pipeline.core.ids import InvalidInput
from pipeline.features.catalog.model import CatalogView
from pipeline.features.scenarios.filters import (
    BoundCondition,
    Diversity,
    Filter,
    in_category,
    parse_condition,
    parse_literal,
    request_value,
)

SHOE = CatalogView(
    categories=("shoes/running",),
    attributes={"brand": "acme", "colors": ["red", "blue"], "size": 42, "sale": True},
    price=59.0,
    created_at_ms=1000,
)


@pytest.mark.parametrize(
    ("text", "params", "holds"),
    [
        ("price <= $max_price", {"max_price": 60.0}, True),
        ("price <= $max_price", {"max_price": 50.0}, False),
        ("price > 58.5", {}, True),
        ("brand == acme", {}, True),
        ("brand == 'acme'", {}, True),
        ("brand != acme", {}, False),
        ("brand in $brands", {"brands": ["zeta", "acme"]}, True),
        ("brand not in [acme, zeta]", {}, False),
        ("colors == blue", {}, True),
        ("colors != red", {}, False),
        ("colors in [green, red]", {}, True),
        ("size >= 42", {}, True),
        ("sale == true", {}, True),
        ("sale == false", {}, False),
        ("created_at < 2000", {}, True),
        # An item without the field fails all but != and not in.
        ("material == wool", {}, False),
        ("material != wool", {}, True),
        ("material not in [wool]", {}, True),
        ("material < 3", {}, False),
        # Ordering compares numbers only.
        ("brand < zzz", {}, False),
    ],
)
def test_conditions_hold_as_documented(text: str, params: dict, holds: bool) -> None:
    condition = parse_condition(text, {"max_price", "brands"})
    bound = condition.bind(params)
    assert bound is not None and bound.holds(SHOE) is holds


def test_a_condition_whose_parameter_was_not_sent_is_skipped() -> None:
    condition = parse_condition("price <= $max_price", {"max_price"})
    assert condition.bind({}) is None
    assert condition.bind({"max_price": 1.0}) == BoundCondition("price", "<=", 1.0)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("price", "expected FIELD OP VALUE"),
        ("price ~= 3", "expected FIELD OP VALUE"),
        ("price <= $undeclared", "does not declare"),
        ("brand == a b", "cannot read the value"),
    ],
)
def test_bad_conditions_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        parse_condition(text, {"max_price"})


def test_literals() -> None:
    assert parse_literal("[1, 'a b', true, x]") == [1.0, "a b", True, "x"]
    assert parse_literal("[]") == []
    assert parse_literal("-2.5e1") == -25.0


def test_a_parent_category_matches_its_children_only() -> None:
    assert in_category(["shoes/running"], ["shoes"])
    assert in_category(["shoes"], ["shoes"])
    assert not in_category(["shoeshine"], ["shoes"])
    assert not in_category(["shoes"], ["shoes/running"])
    assert not in_category([], ["shoes"])


def test_the_filter_composes_every_rule() -> None:
    rule = Filter(
        excluded=frozenset({"gone"}),
        categories=("shoes",),
        exclude_categories=("shoes/trail",),
        conditions=(BoundCondition("price", "<", 100.0),),
    )
    assert rule.admits("a", SHOE)
    assert not rule.admits("gone", SHOE)
    assert not rule.admits("a", CatalogView(categories=("hats",), price=1.0))
    assert not rule.admits("a", CatalogView(categories=("shoes/trail/x",), price=1.0))
    assert not rule.admits("a", CatalogView(categories=("shoes",), price=200.0))
    assert not rule.admits("a", CatalogView(categories=("shoes",), price=1.0, available=False))
    keeps_unavailable = Filter(available_only=False)
    assert keeps_unavailable.admits("a", CatalogView(available=False))


def test_narrowing_keeps_the_base_rules() -> None:
    base = Filter(excluded=frozenset({"x"}), categories=("shoes",))
    narrowed = base.narrowed((), (BoundCondition("sale", "==", True),))
    assert narrowed.categories == ("shoes",) and not narrowed.admits("x", SHOE)
    assert narrowed.admits("y", SHOE)
    assert not narrowed.admits("y", CatalogView(categories=("shoes",)))


def test_diversity_caps_categories_and_attribute_values() -> None:
    caps = Diversity(per_category=2, per_attribute={"brand": 1})
    first = CatalogView(categories=("a",), attributes={"brand": "x"})
    same_brand = CatalogView(categories=("b",), attributes={"brand": "x"})
    assert caps.allows(first)
    caps.take(first)
    assert not caps.allows(same_brand)
    other = CatalogView(categories=("a",), attributes={"brand": "y"})
    assert caps.allows(other)
    caps.take(other)
    assert not caps.allows(CatalogView(categories=("a",)))
    assert caps.allows(CatalogView(categories=("c",)))


def test_request_values_by_declared_type() -> None:
    assert request_value("number", ["12.5"], "p") == 12.5
    assert request_value("list", ["a,b", "3"], "p") == ["a", "b", 3.0]
    assert request_value("bool", ["true"], "p") is True
    assert request_value("string", ["red"], "p") == "red"
    for kind, raw in [("number", ["x"]), ("bool", ["yes"]), ("number", ["1", "2"])]:
        with pytest.raises(InvalidInput, match="p"):
            request_value(kind, raw, "p")
