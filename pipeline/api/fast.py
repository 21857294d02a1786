"""The reader's fast lane: hot GET routes served without FastAPI's per-request machinery.

FastAPI resolves dependencies, validates parameters into models and routes through several
layers on every request; for a list read from Redis in one round trip that is most of the
cost. A :class:`FastRoute` serves a well-formed request of a documented route directly:
its handler parses the path and query itself and returns the body, or None for anything it
does not handle (a malformed or unusual request), which then goes to the FastAPI route of
the same path. So validation errors, the OpenAPI document and ``/docs`` stay FastAPI's, and
the fast lane never answers differently from it, only sooner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.api.deps import ServiceContext
from pipeline.api.http import HttpMiddleware, StoreUnavailable, error_response

# (context, path parameters, query parameters) -> the JSON body, or None to let FastAPI answer.
FastHandler = Callable[[ServiceContext, dict[str, str], dict[str, str]], Awaitable[bytes | None]]
_HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True, slots=True)
class FastRoute:
    """A GET route template and its handler: ``/v1/trending`` or, with one path parameter,
    ``/v1/users/{user_id}/recommendations``.

    The parameter takes everything between the template's fixed head and tail, slashes
    included, as ``{user_id:path}`` does in the FastAPI route of the same path: ids may hold
    ``/``, sent as is or as ``%2F`` (the server decodes both to ``/`` in ``scope["path"]``).
    The path is matched exactly as received, so ``//v1/...`` or a trailing slash is left to
    FastAPI like anything else unusual.
    """

    path: str
    handle: FastHandler
    head: str = field(init=False)
    tail: str = field(init=False)
    parameter: str | None = field(init=False)
    # The template without convertors, as Starlette's routes have it: the metrics label.
    path_format: str = field(init=False)

    def __post_init__(self) -> None:
        head, brace, rest = self.path.partition("{")
        name, _, tail = rest.partition("}")
        if "{" in tail:
            raise ValueError(f"a fast route has at most one path parameter: {self.path}")
        object.__setattr__(self, "head", head)
        object.__setattr__(self, "tail", tail)
        # "{user_id:path}" names the parameter user_id.
        parameter = name.partition(":")[0] if brace else None
        object.__setattr__(self, "parameter", parameter)
        template = self.path if parameter is None else f"{head}{{{parameter}}}{tail}"
        object.__setattr__(self, "path_format", template)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameter of a matching (decoded) request path, else None."""
        if self.parameter is None:
            return {} if path == self.head else None
        if (
            len(path) <= len(self.head) + len(self.tail)
            or not path.startswith(self.head)
            or not path.endswith(self.tail)
        ):
            return None
        return {self.parameter: path[len(self.head) : len(path) - len(self.tail)]}


def query_params(raw: bytes) -> dict[str, str] | None:
    """The query string as a dict; None when a name repeats (left to FastAPI)."""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    found = dict(pairs)
    return found if len(found) == len(pairs) else None


class FastLaneMiddleware(HttpMiddleware):
    """Serves the fast routes; passes everything else to the app."""

    def __init__(self, app: ASGIApp, routes: Sequence[FastRoute]) -> None:
        super().__init__(app)
        self.routes = list(routes)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            for route in self.routes:
                path = route.match(scope["path"])
                if path is None:
                    continue
                query = query_params(scope.get("query_string", b""))
                if query is not None and await self._serve(route, path, query, scope, send):
                    return
                break
        await self.app(scope, receive, send)

    async def _serve(
        self,
        route: FastRoute,
        path: dict[str, str],
        query: dict[str, str],
        scope: Scope,
        send: Send,
    ) -> bool:
        context: ServiceContext = scope["app"].state.context
        try:
            body = await route.handle(context, path, query)
        except StoreUnavailable as exc:
            scope["route"] = route
            await error_response(503, "redis_unavailable", str(exc))(scope, _no_body, send)
            return True
        if body is None:
            return False
        # The metrics middleware labels requests by the matched route's template.
        scope["route"] = route
        headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True


async def _no_body() -> Any:
    return {"type": "http.request", "body": b"", "more_body": False}


def small_int(value: str | None, default: int, low: int, high: int) -> int | None:
    """A whole number in [low, high] written plainly, the default when absent, else None."""
    if value is None:
        return default
    if not value.isdigit() or len(value) > 9:
        return None
    number = int(value)
    return number if low <= number <= high else None
