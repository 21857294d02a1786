"""The user record contract (topic ``catalog.users``, ``POST /v1/users``): users as data.

``{"user_id", "attributes": {name: value or [values]}, "updated_at"?}``: attribute names and
values follow the item contract's rules (``pipeline.core.items``: at most 64 attributes, names
are ids, values strings of at most 256 characters, finite numbers or booleans, lists of at
most 64 of them). ``updated_at`` (ISO-8601 or epoch milliseconds; the collector stamps it) says
when the record was made, so that a ``forget`` of the user in the same batch erases the
records made before it and keeps those made after. A later version of a user's record
replaces the earlier one whole. Unknown fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline.core.events import Rejection, parse_record, parse_timestamp
from pipeline.core.ids import InvalidInput, check_id
from pipeline.core.items import MAX_ATTRIBUTE_VALUES, MAX_ATTRIBUTES
from pipeline.core.items import _attribute_value as attribute_value

# The topic of user records, before PIPELINE_TOPIC_PREFIX (topics.yaml).
USERS_TOPIC = "catalog.users"


@dataclass(frozen=True, slots=True)
class User:
    """One user record. A later version of the same ``user_id`` replaces it whole."""

    user_id: str
    attributes: dict[str, Any] = field(default_factory=dict, hash=False)
    updated_at_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user_id": self.user_id, "attributes": self.attributes}
        if self.updated_at_ms is not None:
            out["updated_at"] = self.updated_at_ms
        return out


def user_from_dict(raw: object) -> User:
    """Validate one user record; raises :class:`InvalidInput` with the reason."""
    if not isinstance(raw, dict):
        raise InvalidInput("a user record must be a JSON object")
    if "user_id" not in raw:
        raise InvalidInput("user_id is required")
    user_id = check_id(raw["user_id"], "user_id")
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"attributes must be an object of at most {MAX_ATTRIBUTES} entries")
    clean: dict[str, Any] = {}
    for name, value in attributes.items():
        check_id(name, "attribute name")
        if isinstance(value, list):
            if len(value) > MAX_ATTRIBUTE_VALUES:
                raise InvalidInput(
                    f"attributes[{name!r}] holds more than {MAX_ATTRIBUTE_VALUES} values"
                )
            clean[name] = [attribute_value(entry, name) for entry in value]
        else:
            clean[name] = attribute_value(value, name)
    updated_at = raw.get("updated_at")
    return User(
        user_id=user_id,
        attributes=clean,
        updated_at_ms=None if updated_at is None else parse_timestamp(updated_at, "updated_at"),
    )


def parse_user_message(raw: bytes | str | None) -> tuple[User | None, Rejection | None]:
    """One ``catalog.users`` message to a user record or a rejection. Never raises."""
    return parse_record(raw, user_from_dict)


def stored_attribute(raw: bytes) -> Any:
    """One field of a user's attribute hash (JSON); anything malformed reads as None."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
