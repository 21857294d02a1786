"""The requests of the HTTP contract as plain data (:class:`Call`), built without I/O.

:class:`~pipeline.client.Client` and :class:`~pipeline.client.AsyncClient` build the same
calls here and differ only in how they send them. Ids in paths are percent-encoded as a
whole segment (ids may contain ``/``, ``+``, ``=``, ``@`` and ``:``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import orjson

from pipeline.client import models

T = TypeVar("T")

DEFAULT_COLLECTOR_URL = "http://127.0.0.1:8001"
DEFAULT_READER_URL = "http://127.0.0.1:8000"

# Values of scenario parameters and other query values the client can send; a list or
# tuple repeats the parameter (``category=["shoes", "boots"]``).
Scalar = str | int | float | bool
QueryValue = Scalar | list[Scalar] | tuple[Scalar, ...]
Query = list[tuple[str, str]]

EMPTY_BATCH = models.BatchResult(0, 0, ())
USER_AGENT = "streamrec-client/0.1"


def headers(api_key: str | None) -> dict[str, str]:
    """Headers of every request; the key only here, never in URLs, messages or reprs."""
    sent = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    if api_key:
        sent["X-API-Key"] = api_key
    return sent


def describe(kind: str, endpoints: Endpoints, api_key: str | None) -> str:
    """The clients' repr: the URLs, and whether a key is set (never the key)."""
    key = "<set>" if api_key else None
    return (
        f"{kind}(collector_url={endpoints.collector!r}, reader_url={endpoints.reader!r}, "
        f"api_key={key})"
    )


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its success answer.

    ``repeatable``: sending it twice has the effect of sending it once (GETs, DELETE, items
    replacing themselves, events de-duplicated by ``event_id``, rank which only reads), so
    it may be retried. False unless a builder says so: retrying is opt-in. ``batch``: ``"event"`` or ``"item"`` when a 400 carrying per-element
    results means every element was rejected.
    """

    method: str
    url: str
    parse: Callable[[Any], T]
    params: Query = field(default_factory=list)
    body: bytes | None = None
    repeatable: bool = False
    batch: str | None = None


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Base URLs of the two services, without a trailing slash (a path prefix is kept, for
    services mounted behind a proxy under ``https://example.com/recs``)."""

    collector: str
    reader: str

    @classmethod
    def of(cls, collector_url: str | None, reader_url: str | None) -> Endpoints:
        return cls(
            _base(collector_url or DEFAULT_COLLECTOR_URL, "collector_url"),
            _base(reader_url or DEFAULT_READER_URL, "reader_url"),
        )


def _base(url: str, name: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return url.rstrip("/")


def segment(value: str, name: str) -> str:
    """``value`` as one path segment: every reserved character percent-encoded (``/`` too).

    ``.`` and ``..`` are valid ids but also dot segments, which URL normalisation removes
    (``/v1/users/../x`` is ``/v1/x``); their dots are encoded too.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


def _strings(values: str | Iterable[str], name: str) -> list[str]:
    """A sequence of ids; a lone string is one id (not its characters)."""
    listed = [values] if isinstance(values, str) else list(values)
    for value in listed:
        if not isinstance(value, str) or not value:
            raise ValueError(f"every {name} must be a non-empty string")
    return listed


def query_value(value: Scalar) -> str:
    """Query text of a value: booleans as ``true``/``false`` (not Python's ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _elements(given: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One object or a list of objects, as a list of copies (the caller's are never changed)."""
    listed = [given] if isinstance(given, Mapping) else list(given)
    copies = []
    for index, element in enumerate(listed):
        if not isinstance(element, Mapping):
            raise TypeError(f"element {index} is a {type(element).__name__}, not a mapping")
        copies.append(dict(element))
    return copies


def prepare_events(
    events: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
) -> list[dict[str, Any]]:
    """Copies of ``events`` with ``event_id`` (a uuid4 hex) and ``timestamp`` (now, epoch ms)
    filled in where missing or None. Done once, before the first attempt, so a retried
    request carries the same ids and the pipeline drops the replay."""
    prepared = _elements(events)
    stamp = now_ms()
    for event in prepared:
        if event.get("event_id") is None:
            event["event_id"] = new_id()
        if event.get("timestamp") is None:
            event["timestamp"] = stamp
    return prepared


def prepare_items(
    items: Mapping[str, Any] | Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    return _elements(items)


def track(at: Endpoints, events: list[dict[str, Any]]) -> Call[models.BatchResult]:
    return Call(
        "POST",
        f"{at.collector}/v1/events",
        lambda body: models.parse_batch(body, "event_id"),
        body=_json(events),
        repeatable=True,
        batch="event",
    )


def publish_items(at: Endpoints, items: list[dict[str, Any]]) -> Call[models.BatchResult]:
    return Call(
        "POST",
        f"{at.collector}/v1/items",
        lambda body: models.parse_batch(body, "item_id"),
        body=_json(items),
        repeatable=True,
        batch="item",
    )


def forget_user(at: Endpoints, user_id: str) -> Call[None]:
    return Call(
        "DELETE",
        f"{at.collector}/v1/users/{segment(user_id, 'user_id')}",
        _nothing,
        repeatable=True,
    )


def _nothing(body: Any) -> None:
    return None


def recommend(
    at: Endpoints,
    scenario: str,
    user_id: str | None,
    item_ids: str | Iterable[str],
    n: int,
    exclude: str | Iterable[str],
    fields: str | Iterable[str],
    params: Mapping[str, QueryValue],
) -> Call[models.Recommendations]:
    if not isinstance(scenario, str) or not scenario:
        raise ValueError("scenario must be a non-empty string")
    query: Query = [("scenario", scenario)]
    if user_id is not None:
        query.append(("user_id", _strings(user_id, "user_id")[0]))
    query += [("item_id", item_id) for item_id in _strings(item_ids, "item_id")]
    query.append(("n", query_value(n)))
    query += [("exclude", item_id) for item_id in _strings(exclude, "exclude")]
    chosen = _strings(fields, "field")
    if chosen:
        query.append(("fields", ",".join(chosen)))
    for name, value in sorted(params.items()):
        repeated = value if isinstance(value, list | tuple) else (value,)
        query += [(name, query_value(entry)) for entry in repeated]
    url = f"{at.reader}/v1/recommendations"
    return Call("GET", url, models.parse_recommendations, params=query, repeatable=True)


def for_you(
    at: Endpoints, user_id: str, n: int, context: Mapping[str, Any] | None = None
) -> Call[models.ForYou]:
    url = f"{at.reader}/v1/users/{segment(user_id, 'user_id')}/recommendations"
    query: Query = [("n", query_value(n))]
    if context:
        query.append(("context", orjson.dumps(dict(context)).decode()))
    return Call("GET", url, models.parse_for_you, params=query, repeatable=True)


def related(at: Endpoints, item_id: str, n: int, relation: str | None) -> Call[models.Related]:
    url = f"{at.reader}/v1/items/{segment(item_id, 'item_id')}/related"
    query: Query = [("n", query_value(n))]
    if relation is not None:
        query.append(("relation", relation))
    return Call("GET", url, models.parse_related, params=query, repeatable=True)


def trending(
    at: Endpoints, kind: str | None, window: str | None, category: str | None, n: int
) -> Call[models.Trending]:
    query: Query = [
        (name, value)
        for name, value in (("kind", kind), ("window", window), ("category", category))
        if value is not None
    ]
    query.append(("n", query_value(n)))
    return Call(
        "GET", f"{at.reader}/v1/trending", models.parse_trending, params=query, repeatable=True
    )


def rank(
    at: Endpoints,
    user_id: str,
    item_ids: str | Iterable[str],
    context: Mapping[str, str | int | float] | None,
) -> Call[models.Ranking]:
    url = f"{at.reader}/v1/users/{segment(user_id, 'user_id')}/rank"
    body = {"items": _strings(item_ids, "item_id"), "context": dict(context or {})}
    # A POST only because the list travels in the body: it reads, so it may be repeated.
    return Call("POST", url, models.parse_ranking, body=_json(body), repeatable=True)


def scenarios(at: Endpoints) -> Call[list[models.Scenario]]:
    return Call("GET", f"{at.reader}/v1/scenarios", models.parse_scenarios, repeatable=True)


def stats(at: Endpoints, scenario: str, window: str) -> Call[models.ScenarioStats]:
    url = f"{at.reader}/v1/scenarios/{segment(scenario, 'scenario')}/stats"
    return Call("GET", url, models.parse_stats, params=[("window", window)], repeatable=True)
