"""The user record contract (pipeline.core.users): ids validated, sizes bounded."""

from __future__ import annotations

import pytest

from pipeline.core.ids import InvalidInput
from pipeline.core.users import parse_user_message, user_from_dict


def test_a_valid_record_round_trips() -> None:
    raw = {
        "user_id": "shop:42/anon",
        "attributes": {"country": "DE", "age": 31, "vip": True, "interests": ["run", "hike"]},
        "updated_at": "2026-01-01T00:00:00Z",
        "unknown": "ignored",
    }
    user = user_from_dict(raw)
    assert user.user_id == "shop:42/anon"
    assert user.attributes == raw["attributes"]
    assert user.updated_at_ms == 1_767_225_600_000
    assert user_from_dict(user.to_dict()) == user
    assert user_from_dict({"user_id": "u1"}).attributes == {}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "must be a JSON object"),
        ({}, "user_id is required"),
        ({"user_id": "a b"}, "user_id may contain only"),
        ({"user_id": "u" * 129}, "user_id must be 1-128"),
        ({"user_id": "u1", "attributes": []}, "attributes must be an object"),
        ({"user_id": "u1", "attributes": {f"a{i}": 1 for i in range(65)}}, "at most 64"),
        ({"user_id": "u1", "attributes": {"bad name": 1}}, "attribute name"),
        ({"user_id": "u1", "attributes": {"x": "v" * 257}}, "longer than 256"),
        ({"user_id": "u1", "attributes": {"x": {"nested": 1}}}, "must be a number"),
        ({"user_id": "u1", "attributes": {"x": list(range(65))}}, "more than 64 values"),
        ({"user_id": "u1", "attributes": {"x": float("nan")}}, "finite"),
        ({"user_id": "u1", "updated_at": 12}, "between 1973 and 2100"),
    ],
)
def test_bad_records_are_refused_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        user_from_dict(raw)


def test_messages_never_raise() -> None:
    assert parse_user_message(None)[1] is not None
    assert parse_user_message(b"{")[1] is not None
    user, rejection = parse_user_message(b'{"user_id": "u1", "attributes": {"c": "DE"}}')
    assert rejection is None and user is not None and user.attributes == {"c": "DE"}
