"""The context of a read request (device, page, ...): ``context={json}`` and
``context.{key}=value`` query parameters, checked as event contexts are. Scenarios and the
for-you endpoint read it, and the click model ranks in it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from pipeline.core.events import check_context
from pipeline.core.ids import InvalidInput

# Request parameters named ``context.{key}`` set one key of the request context.
CONTEXT_PREFIX = "context."
# The parameter holding the whole context as a JSON object.
CONTEXT_PARAM = "context"
# A context value read as a number: an optional minus and 1-15 ASCII digits.
_INTEGER = re.compile(r"-?[0-9]{1,15}")


def _context_value(text: str) -> str | int | float:
    """A ``context.{key}`` value: a plain decimal number as a number (events carry numbers
    as JSON numbers, and the click model tells the two apart), anything else as text."""
    if _INTEGER.fullmatch(text):
        return int(text)
    return text


def parse_context(document: str | None, named: Mapping[str, str]) -> dict[str, Any]:
    """The request context: ``context`` (a JSON object) and ``context.{key}`` parameters
    (``named``: parameter name -> value), the latter winning; checked as event contexts are
    (:func:`check_context`); :class:`InvalidInput` says what is wrong."""
    context: dict[str, Any] = {}
    if document is not None:
        try:
            decoded = orjson.loads(document)
        except orjson.JSONDecodeError:
            raise InvalidInput("context must be a JSON object") from None
        context.update(check_context(decoded))
    for name, text in named.items():
        context[name[len(CONTEXT_PREFIX) :]] = _context_value(text)
    return check_context(context)
