"""The Redis key schema (pipeline.core.keys): the public, operator-facing contract of keys."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.ids import InvalidInput, valid_id
from pipeline.core.keys import Keys

FAST = settings(max_examples=100, deadline=None, database=None)

KEYS = Keys("rec")


def test_key_shapes() -> None:
    assert KEYS.item("sku-1") == "rec:item:sku-1"
    assert KEYS.items() == "rec:items"
    assert KEYS.trending("clicks", "1h", 14756) == "rec:trending:clicks:1h:14756:all"
    assert (
        KEYS.trending("conversions", "7d", 81, "shoes")
        == "rec:trending:conversions:7d:81:cat:shoes"
    )
    assert KEYS.fence("trending", "events.clicks", 3) == "rec:fence:trending:events.clicks:3"
    assert KEYS.fence_prefix("trending") == "rec:fence:trending:"
    assert KEYS.pattern() == "rec:*"
    assert Keys("t1a2b").item("x") == "t1a2b:item:x"


def test_every_key_lies_under_the_pattern() -> None:
    keys = Keys("tenant-7")
    built = [
        keys.item("a"),
        keys.items(),
        keys.trending("clicks", "1h", 1),
        keys.trending("clicks", "1h", 1, "c"),
        keys.fence("catalog", "catalog.items", 0),
    ]
    assert all(key.startswith(keys.pattern()[:-1]) for key in built)
    assert len(set(built)) == len(built)


INVALID_IDS = ["", " ", "a b", " a", "a ", "{a}", "a{b", "b}", "a\tb", "a\nb", 'a"b', "x" * 129]


def key_builders(bad: Any) -> list[Any]:
    builders = [
        lambda: KEYS.item(bad),
        lambda: KEYS.trending(bad, "1h", 1),
        lambda: KEYS.trending("clicks", bad, 1),
        lambda: KEYS.fence(bad, "t", 0),
        lambda: KEYS.fence("trending", bad, 0),
    ]
    if bad is not None:  # no category means the ":all" set
        builders.append(lambda: KEYS.trending("clicks", "1h", 1, bad))
    return builders


@pytest.mark.parametrize("bad", [*INVALID_IDS, None, 5, ["a"]], ids=repr)
def test_keys_reject_invalid_ids(bad: Any) -> None:
    for build in key_builders(bad):
        with pytest.raises(InvalidInput):
            build()


def test_keys_accept_the_longest_id() -> None:
    longest = "x" * 128
    assert KEYS.item(longest) == f"rec:item:{longest}"
    assert KEYS.trending("clicks", "1h", 1, longest).endswith(f":cat:{longest}")


@FAST
@given(st.text(max_size=130))
def test_item_keys_are_built_only_from_valid_ids(text: str) -> None:
    if valid_id(text):
        assert KEYS.item(text) == "rec:item:" + text
    else:
        with pytest.raises(InvalidInput):
            KEYS.item(text)
