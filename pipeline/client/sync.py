"""The synchronous client, on one ``httpx.Client`` (one connection pool, reused)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from pipeline.client import calls, models
from pipeline.client.calls import EMPTY_BATCH, Call, Endpoints, QueryValue, describe, headers
from pipeline.client.retry import (
    RETRY_ERRORS,
    RETRY_STATUSES,
    Backoff,
    Failure,
    RetryPolicy,
    check_options,
    settle,
    transport_error,
)

T = TypeVar("T")


class Client:
    """A client of the collector (writes) and the reader (reads).

    ``collector_url`` and ``reader_url`` default to the local stack (``http://127.0.0.1:8001``
    and ``http://127.0.0.1:8000``). ``api_key`` is sent as ``X-API-Key``. Each attempt is
    bounded by ``timeout_s`` (connect, send and read each); a failed repeatable request is
    sent again up to ``retries`` times (see :mod:`pipeline.client.retry`), pausing about
    ``backoff_s``, then twice that, and so on. ``transport`` replaces the network (tests:
    ``httpx.MockTransport``); ``sleep`` the pause between attempts.

    Use it as a context manager or call :meth:`close`; share one instance across a
    process's requests (httpx.Client is thread-safe).
    """

    def __init__(
        self,
        collector_url: str | None = None,
        reader_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 2.0,
        retries: int = 3,
        backoff_s: float = 0.1,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        check_options(timeout_s, retries, backoff_s)
        self._endpoints = Endpoints.of(collector_url, reader_url)
        self._described = describe(type(self).__name__, self._endpoints, api_key)
        self._policy = RetryPolicy(retries, Backoff(backoff_s))
        self._random = random.Random()
        self._sleep = sleep
        self._http = httpx.Client(headers=headers(api_key), timeout=timeout_s, transport=transport)

    def __repr__(self) -> str:
        return self._described

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self._http.request(
                    call.method, call.url, params=tuple(call.params), content=call.body
                )
            except RETRY_ERRORS as exc:
                failure = Failure.of_exception(exc)
            except httpx.TransportError as exc:
                raise transport_error(call, exc) from exc
            else:
                if response.status_code not in RETRY_STATUSES:
                    return settle(call, response.status_code, response.content)
                failure = Failure.of_answer(response.status_code, response.content)
            self._sleep(self._policy.pause(call, failure, attempts, self._random.random()))

    def track(self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> models.BatchResult:
        """Send one event or a list (``POST /v1/events``). ``event_id`` (uuid4 hex) and
        ``timestamp`` (now, epoch ms) are filled in where missing; the caller's mappings are
        not changed. Returns per-index results (some may be rejected); raises
        :class:`RejectedError` when every event was rejected. An empty list sends nothing."""
        prepared = calls.prepare_events(events)
        if not prepared:
            return EMPTY_BATCH
        return self._send(calls.track(self._endpoints, prepared))

    def publish_items(
        self, items: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> models.BatchResult:
        """Publish catalog items (``POST /v1/items``); a later version replaces an item."""
        prepared = calls.prepare_items(items)
        if not prepared:
            return EMPTY_BATCH
        return self._send(calls.publish_items(self._endpoints, prepared))

    def forget_user(self, user_id: str) -> None:
        """Ask the pipeline to remove everything it holds about ``user_id`` (202: the agents
        then remove the user's state)."""
        self._send(calls.forget_user(self._endpoints, user_id))

    def recommend(
        self,
        scenario: str,
        user_id: str | None = None,
        item_ids: str | Iterable[str] = (),
        n: int = 10,
        exclude: str | Iterable[str] = (),
        fields: str | Iterable[str] = (),
        **params: QueryValue,
    ) -> models.Recommendations:
        """Recommendations of a scenario (``GET /v1/recommendations``): ``item_ids`` are the
        context items (the product shown), ``exclude`` ids to leave out, ``fields`` catalog
        fields to attach as ``item``, ``params`` the scenario's declared parameters."""
        call = calls.recommend(
            self._endpoints, scenario, user_id, item_ids, n, exclude, fields, params
        )
        return self._send(call)

    def for_you(
        self, user_id: str, n: int = 10, context: Mapping[str, Any] | None = None
    ) -> models.ForYou:
        """The user's for-you list (``GET /v1/users/{user_id}/recommendations``); with a
        ``context`` (device, page, ...), re-ranked by the click model in it."""
        return self._send(calls.for_you(self._endpoints, user_id, n, context))

    def related(self, item_id: str, n: int = 10, relation: str | None = None) -> models.Related:
        """Items related to ``item_id``; ``relation`` one of ``also_clicked``,
        ``also_bought``, ``viewed_then_bought`` (None blends them)."""
        return self._send(calls.related(self._endpoints, item_id, n, relation))

    def trending(
        self,
        kind: str | None = None,
        window: str | None = None,
        category: str | None = None,
        n: int = 10,
    ) -> models.Trending:
        """Trending items (``GET /v1/trending``); None leaves the service's default."""
        return self._send(calls.trending(self._endpoints, kind, window, category, n))

    def rank(
        self,
        user_id: str,
        item_ids: str | Iterable[str],
        context: Mapping[str, str | int | float] | None = None,
    ) -> models.Ranking:
        """Order ``item_ids`` for ``user_id``, best first (``POST /v1/users/{id}/rank``)."""
        return self._send(calls.rank(self._endpoints, user_id, item_ids, context))

    def scenarios(self) -> list[models.Scenario]:
        """The declared scenarios (``GET /v1/scenarios``)."""
        return self._send(calls.scenarios(self._endpoints))

    def stats(self, scenario: str, window: str = "1d") -> models.ScenarioStats:
        """Served, impressions, clicks and conversions of a scenario over ``window``."""
        return self._send(calls.stats(self._endpoints, scenario, window))
