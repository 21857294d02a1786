"""The HTTP edge of both services: API keys and CORS (docs/security.md).

API keys. ``settings.read_api_keys`` may read, ``settings.write_api_keys`` may read and
write; with both lists empty authentication is off. A client sends its key in the
``X-API-Key`` header, or in the ``api_key`` query parameter (``navigator.sendBeacon`` cannot
set headers). Every request needs a key except the public ones (:data:`PUBLIC_PATHS`,
:data:`PUBLIC_PREFIXES`, OPTIONS preflights, and a service's own public routes): deny by
default, so a route added later is protected until it is declared public. Which role a
protected request needs depends on the service, not the method (:class:`Access`): on the
reader everything is a read (``POST /v1/users/{user_id}/rank`` included), on the collector
everything is a write. No valid key: 401 ``{"error": "unauthorized"}``; a read key on the
collector: 403 ``{"error": "forbidden"}``.

The middleware runs before the reader's fast lane (``pipeline.api.fast``) and costs a header
scan, one keyed digest and one dict lookup per request. It removes ``api_key`` from the query
string it passes on, so the key never reaches a route (the fast lane serves such requests
too) nor the server's access log, which prints the query string. Keys are never logged.

CORS: ``settings.cors_origins`` through Starlette's CORSMiddleware, outermost, so that
preflights are answered and error answers (401 included) carry the CORS headers a browser
needs to read them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.api.http import HttpMiddleware
from pipeline.core.settings import Settings

READ = "read"
WRITE = "write"
HEADER = b"x-api-key"
QUERY_PARAMETER = b"api_key"
MIN_KEY_LENGTH = 16
MAX_KEY_LENGTH = 256
KEY_HINT = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"

# Public on both services: probes, metrics (keep them off public routes: docs/deploy.md),
# the API documentation and its assets, and the reader's demo page (on only in `pipeline dev`).
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/demo"})
PUBLIC_PREFIXES = ("/docs/",)

# Allowed request headers and methods of cross-origin calls.
CORS_HEADERS = ("X-API-Key", "Content-Type")
CORS_METHODS = ("GET", "POST", "DELETE", "OPTIONS")
CORS_MAX_AGE_S = 600


class ApiKeyConfigError(ValueError):
    """The configured keys cannot work; ``str`` says why without showing any key."""


@dataclass(frozen=True, slots=True)
class Access:
    """Who may call one service: the role every protected request needs, and the
    ``(method, path)`` pairs of the service's own public routes."""

    service: str
    required: str
    public: frozenset[tuple[str, str]] = frozenset()

    def is_public(self, method: str, path: str) -> bool:
        return (
            method == "OPTIONS"
            or path in PUBLIC_PATHS
            or path.startswith(PUBLIC_PREFIXES)
            or (method, path) in self.public
        )


READER_ACCESS = Access("reader", READ)
# The tracking script is loaded by a <script> tag, which sends no key.
COLLECTOR_ACCESS = Access(
    "collector", WRITE, frozenset({("GET", "/v1/sdk.js"), ("HEAD", "/v1/sdk.js")})
)


def _checked(keys: Iterable[str], variable: str) -> list[bytes]:
    """The keys as bytes; :class:`ApiKeyConfigError` naming the variable and the position
    (never the key) for one that is too short, too long or not visible ASCII."""
    listed = list(keys)
    out = []
    for position, key in enumerate(listed, start=1):
        printable = key.isascii() and all("!" <= ch <= "~" for ch in key)
        if not MIN_KEY_LENGTH <= len(key) <= MAX_KEY_LENGTH or not printable:
            raise ApiKeyConfigError(
                f"{variable}: key {position} of {len(listed)} must be "
                f"{MIN_KEY_LENGTH}-{MAX_KEY_LENGTH} visible ASCII characters (no spaces); "
                f"{KEY_HINT}"
            )
        out.append(key.encode("ascii"))
    return out


class KeyRing:
    """The configured keys and their roles.

    Lookups compare digests keyed with a secret drawn at start (keyed BLAKE2b, a MAC), never
    the keys: the time a lookup takes depends on a digest the caller cannot predict, so it
    reveals nothing about the keys (the property ``hmac.compare_digest`` gives a single
    comparison), and a lookup is one dict access however many keys there are.
    """

    def __init__(self, read_keys: Iterable[str], write_keys: Iterable[str]) -> None:
        self._secret = secrets.token_bytes(32)
        self._roles: dict[bytes, str] = {}
        for key in _checked(read_keys, "PIPELINE_READ_API_KEYS"):
            self._roles[self._digest(key)] = READ
        # A key listed in both may write.
        for key in _checked(write_keys, "PIPELINE_WRITE_API_KEYS"):
            self._roles[self._digest(key)] = WRITE

    def _digest(self, key: bytes) -> bytes:
        # Keyed BLAKE2b is a MAC like HMAC, at a third of HMAC-SHA-256's cost per request.
        return hashlib.blake2b(key, key=self._secret, digest_size=32).digest()

    def __len__(self) -> int:
        return len(self._roles)

    def has(self, role: str) -> bool:
        return role in self._roles.values()

    def role_of(self, presented: bytes) -> str | None:
        """``READ``, ``WRITE``, or None for a key that is not configured."""
        return self._roles.get(self._digest(presented))


def key_ring(settings: Settings, access: Access) -> KeyRing | None:
    """The service's keys, or None when authentication is off (no key configured).

    Raises :class:`ApiKeyConfigError` when a key is malformed, when
    ``settings.require_api_keys`` is on and no key could authorise this service's requests,
    or when the collector has read keys only (every write would be refused).
    """
    ring = KeyRing(settings.read_api_keys, settings.write_api_keys)
    usable = ring.has(WRITE) or (access.required == READ and ring.has(READ))
    if settings.require_api_keys and not usable:
        needed = (
            "PIPELINE_WRITE_API_KEYS"
            if access.required == WRITE
            else "PIPELINE_READ_API_KEYS or PIPELINE_WRITE_API_KEYS"
        )
        raise ApiKeyConfigError(
            f"PIPELINE_REQUIRE_API_KEYS is on but the {access.service} has no key to check: "
            f"set {needed} (JSON list, e.g. '[\"<key>\"]'); {KEY_HINT}"
        )
    if len(ring) and not usable:
        raise ApiKeyConfigError(
            f"the {access.service} has read keys only (PIPELINE_READ_API_KEYS): every request "
            "would be refused; set PIPELINE_WRITE_API_KEYS too"
        )
    return ring if len(ring) else None


def split_query_key(query: bytes) -> tuple[bytes | None, bytes]:
    """(the first ``api_key`` value, the query string without any ``api_key``)."""
    found: bytes | None = None
    kept = []
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        if name == QUERY_PARAMETER:
            if found is None:
                found = unquote_to_bytes(value.replace(b"+", b" "))
        else:
            kept.append(part)
    return found, b"&".join(kept)


def _body(error: str, detail: str) -> bytes:
    return orjson.dumps({"error": error, "detail": detail})


_MISSING = _body(
    "unauthorized",
    "an API key is required: send it in the X-API-Key header or the api_key query parameter",
)
_INVALID = _body("unauthorized", "the API key is not valid")
_READ_ONLY = _body("forbidden", "this API key may only read; writing needs a write key")


class ApiKeyMiddleware(HttpMiddleware):
    """Admits a request with a key of the role it needs (:class:`Access`); answers 401/403
    in the error shape otherwise. Without a ring (authentication off) it only removes
    ``api_key`` from the query string: routes never see it either way (some refuse unknown
    parameters)."""

    def __init__(self, app: ASGIApp, ring: KeyRing | None, access: Access) -> None:
        super().__init__(app)
        self.ring = ring
        self.access = access

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.ring is None:
            query = scope.get("query_string", b"")
            if QUERY_PARAMETER in query:
                scope["query_string"] = split_query_key(query)[1]
            await self.app(scope, receive, send)
            return
        presented: bytes | None = None
        for name, value in scope["headers"]:
            if name == HEADER:
                presented = value
                break
        query = scope.get("query_string", b"")
        if QUERY_PARAMETER in query:
            from_query, scope["query_string"] = split_query_key(query)
            if presented is None:
                presented = from_query
        if self.access.is_public(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        role = None if presented is None else self.ring.role_of(presented)
        if role is None:
            await _refuse(send, 401, _MISSING if presented is None else _INVALID)
        elif self.access.required == WRITE and role != WRITE:
            await _refuse(send, 403, _READ_ONLY)
        else:
            await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, body: bytes) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_api_keys(app: FastAPI, settings: Settings, access: Access) -> None:
    """Check API keys on ``app`` when any is configured and document them in the OpenAPI
    schema (so ``/docs`` offers "Authorize"); without keys, only drop ``api_key`` from query
    strings. Add it after any middleware that must run behind it (Starlette runs the last
    added outermost)."""
    ring = key_ring(settings, access)
    app.add_middleware(ApiKeyMiddleware, ring=ring, access=access)
    if ring is not None:
        _document_keys(app, access)


def install_cors(app: FastAPI, settings: Settings) -> None:
    """CORS for ``settings.cors_origins`` (none: no CORS headers). Add it last: outermost."""
    if not settings.cors_origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=list(CORS_METHODS),
        allow_headers=list(CORS_HEADERS),
        max_age=CORS_MAX_AGE_S,
    )


def _document_keys(app: FastAPI, access: Access) -> None:
    """Declare the header and the query parameter as security schemes of every protected
    operation."""

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["ApiKeyHeader"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
        schemes["ApiKeyQuery"] = {"type": "apiKey", "in": "query", "name": "api_key"}
        role = "a write key" if access.required == WRITE else "a read or write key"
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if access.is_public(method.upper(), path):
                    continue
                operation["security"] = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]
                note = f"Needs {role} (`X-API-Key` header or `api_key` query parameter)."
                operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
                responses = operation.setdefault("responses", {})
                responses.setdefault("401", {"description": "No valid API key."})
                if access.required == WRITE:
                    responses.setdefault("403", {"description": "A read key on a write."})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
