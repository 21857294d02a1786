"""A scripted HTTP server for the client's unit tests (httpx.MockTransport: pure HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from pipeline.client import AsyncClient, Client

COLLECTOR = "http://collector.test"
READER = "http://reader.test"
KEY = "sk-live-4f1c2e9a8b7d"

# What the server does for one request: an answer, or an exception (a connection error).
Step = httpx.Response | Exception


def answer(status: int, body: Any = None) -> httpx.Response:
    """A JSON answer (no body when ``body`` is None)."""
    if body is None:
        return httpx.Response(status)
    return httpx.Response(status, content=orjson.dumps(body))


def error(status: int, code: str, detail: str) -> httpx.Response:
    return answer(status, {"error": code, "detail": detail})


class Server:
    """Answers requests with ``steps`` in order (the last one repeats) and records them."""

    def __init__(self, *steps: Step | Callable[[httpx.Request], Step]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def _next(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if callable(step) and not isinstance(step, httpx.Response | Exception):
            step = step(request)
        if isinstance(step, Exception):
            raise step
        return step

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._next)

    def async_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            return self._next(request)

        return httpx.MockTransport(handle)

    def client(self, **options: Any) -> Client:
        """A sync client on this server whose pauses are recorded, not slept."""
        options.setdefault("api_key", KEY)
        return Client(
            COLLECTOR, READER, transport=self.transport(), sleep=self.sleeps.append, **options
        )

    def async_client(self, **options: Any) -> AsyncClient:
        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        options.setdefault("api_key", KEY)
        return AsyncClient(
            COLLECTOR, READER, transport=self.async_transport(), sleep=sleep, **options
        )

    def sent(self, index: int = -1) -> Any:
        """The decoded JSON body of a request."""
        return orjson.loads(self.requests[index].content)


def batch(results: list[dict[str, Any]]) -> dict[str, Any]:
    accepted = sum(1 for r in results if r["status"] == "accepted")
    return {"accepted": accepted, "rejected": len(results) - accepted, "results": results}


def connect_error() -> httpx.ConnectError:
    return httpx.ConnectError("[Errno 111] Connection refused")
