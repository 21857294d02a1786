"""Ids and numbers as they may enter the system: one rule, used by every boundary.

Ids (users, items, categories, attribute names and values, sessions) become parts of Redis
keys and URLs, so they are checked before anything stores or reads them.
"""

from __future__ import annotations

import math
import re

MAX_ID_LENGTH = 128
# No whitespace, control characters, braces (Redis Cluster hash tags) or quotes. Unicode
# letters and digits are fine.
ID_PATTERN = re.compile(r"[\w.:@/+=-]{1,128}")
_id_fullmatch = ID_PATTERN.fullmatch
# Several valid ids joined by newlines (not an id character): one match checks a whole list.
_IDS_PATTERN = re.compile(r"[\w.:@/+=-]{1,128}(?:\n[\w.:@/+=-]{1,128})*")
# orjson refuses integers beyond 64 bits; pydantic bodies do not, and 10**400 would not even
# convert to float. Every path holds numbers to the same limit.
MAX_INT = 2**64


class InvalidInput(ValueError):
    """Input that breaks a contract; ``str(exc)`` is the reason given to the sender."""


def valid_id(value: object) -> bool:
    """True when ``value`` may be used as a user, item, category or session id."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def check_id(value: object, name: str) -> str:
    """``value`` when it is a valid id; else :class:`InvalidInput` naming ``name``."""
    # Valid ids (nearly all) pass one type test and one match; the checks below name the fault.
    if type(value) is str and _id_fullmatch(value) is not None:
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string")
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise InvalidInput(f"{name} must be 1-{MAX_ID_LENGTH} characters")
    if ID_PATTERN.fullmatch(value) is None:
        raise InvalidInput(f"{name} may contain only letters, digits and . : @ / + = - _")
    return value


def check_ids(values: list[object], name: str) -> tuple[str, ...]:
    """``values`` as a tuple when every one is a valid id; else :class:`InvalidInput` naming
    ``name`` (the first invalid one's fault)."""
    if all(type(value) is str for value in values):
        joined = "\n".join(values)  # type: ignore[arg-type]
        # An id holding a newline would pass as two: the count of separators rules it out.
        if joined.count("\n") == len(values) - 1 and _IDS_PATTERN.fullmatch(joined):
            return tuple(values)  # type: ignore[arg-type]
    return tuple(check_id(value, name) for value in values)


def check_number(value: object, name: str) -> float:
    """A finite JSON number (not a boolean, not beyond 64 bits) as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number")
    if isinstance(value, int) and abs(value) >= MAX_INT:
        raise InvalidInput(f"{name} is too large")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInput(f"{name} must be finite")
    return number


def decode_id(raw: bytes) -> str | None:
    """Stored bytes (a sorted-set member, a hash value) as an id, or None when they break
    the id contract: Redis is a public contract that others may write, and such ids are
    never served."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    return text if valid_id(text) else None
