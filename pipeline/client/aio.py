"""The asynchronous client, on one ``httpx.AsyncClient`` (one connection pool, reused).

The same API as :class:`pipeline.client.Client`; every request method is a coroutine."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
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


class AsyncClient:
    """The asynchronous twin of :class:`pipeline.client.Client`: the same arguments, methods
    and errors; request methods are coroutines, ``sleep`` is awaited, ``transport`` is an
    ``httpx.AsyncBaseTransport`` (``httpx.MockTransport``, ``httpx.ASGITransport``). Use it
    as ``async with AsyncClient(...) as client`` or ``await client.close()``; share one
    instance per event loop.
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        check_options(timeout_s, retries, backoff_s)
        self._endpoints = Endpoints.of(collector_url, reader_url)
        self._described = describe(type(self).__name__, self._endpoints, api_key)
        self._policy = RetryPolicy(retries, Backoff(backoff_s))
        self._random = random.Random()
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            headers=headers(api_key), timeout=timeout_s, transport=transport
        )

    def __repr__(self) -> str:
        return self._described

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self._http.request(
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
            await self._sleep(self._policy.pause(call, failure, attempts, self._random.random()))

    async def track(
        self, events: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> models.BatchResult:
        """Send one event or a list (``POST /v1/events``). ``event_id`` (uuid4 hex) and
        ``timestamp`` (now, epoch ms) are filled in where missing; the caller's mappings are
        not changed. Returns per-index results (some may be rejected); raises
        :class:`RejectedError` when every event was rejected. An empty list sends nothing."""
        prepared = calls.prepare_events(events)
        if not prepared:
            return EMPTY_BATCH
        return await self._send(calls.track(self._endpoints, prepared))

    async def publish_items(
        self, items: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> models.BatchResult:
        """Publish catalog items (``POST /v1/items``); a later version replaces an item."""
        prepared = calls.prepare_items(items)
        if not prepared:
            return EMPTY_BATCH
        return await self._send(calls.publish_items(self._endpoints, prepared))

    async def forget_user(self, user_id: str) -> None:
        """Ask the pipeline to remove everything it holds about ``user_id`` (202: the agents
        then remove the user's state)."""
        await self._send(calls.forget_user(self._endpoints, user_id))

    async def recommend(
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
        return await self._send(call)

    async def for_you(
        self, user_id: str, n: int = 10, context: Mapping[str, Any] | None = None
    ) -> models.ForYou:
        """The user's for-you list (``GET /v1/users/{user_id}/recommendations``); with a
        ``context`` (device, page, ...), re-ranked by the click model in it."""
        return await self._send(calls.for_you(self._endpoints, user_id, n, context))

    async def related(
        self, item_id: str, n: int = 10, relation: str | None = None
    ) -> models.Related:
        """Items related to ``item_id``; ``relation`` one of ``also_clicked``,
        ``also_bought``, ``viewed_then_bought`` (None blends them)."""
        return await self._send(calls.related(self._endpoints, item_id, n, relation))

    async def trending(
        self,
        kind: str | None = None,
        window: str | None = None,
        category: str | None = None,
        n: int = 10,
    ) -> models.Trending:
        """Trending items (``GET /v1/trending``); None leaves the service's default."""
        return await self._send(calls.trending(self._endpoints, kind, window, category, n))

    async def rank(
        self,
        user_id: str,
        item_ids: str | Iterable[str],
        context: Mapping[str, str | int | float] | None = None,
    ) -> models.Ranking:
        """Order ``item_ids`` for ``user_id``, best first (``POST /v1/users/{id}/rank``)."""
        return await self._send(calls.rank(self._endpoints, user_id, item_ids, context))

    async def scenarios(self) -> list[models.Scenario]:
        """The declared scenarios (``GET /v1/scenarios``)."""
        return await self._send(calls.scenarios(self._endpoints))

    async def stats(self, scenario: str, window: str = "1d") -> models.ScenarioStats:
        """Served, impressions, clicks and conversions of a scenario over ``window``."""
        return await self._send(calls.stats(self._endpoints, scenario, window))
