"""The request context of read requests (core/request_context.py)."""

from __future__ import annotations

import pytest

from pipeline.core.ids import InvalidInput
from pipeline.core.request_context import parse_context


def test_named_values_win_and_only_plain_decimals_become_numbers() -> None:
    context = parse_context(
        '{"device": "web", "slot": 1}',
        {"context.device": "mobile", "context.n": "-42", "context.x": "--5", "context.y": "²"},
    )
    assert context == {"device": "mobile", "slot": 1, "n": -42, "x": "--5", "y": "²"}
    # Longer than 15 digits stays text (no precision games).
    assert parse_context(None, {"context.id": "1234567890123456"}) == {"id": "1234567890123456"}


@pytest.mark.parametrize("document", ["not json", "[1]", '"text"'])
def test_a_context_that_is_not_a_json_object_is_invalid_input(document: str) -> None:
    with pytest.raises(InvalidInput):
        parse_context(document, {})
