"""When to retry, how long to wait, and how an answer becomes a result or an exception.

Shared by the sync and the async client, which only differ in how they send and sleep.
A request is retried only when it is repeatable (:attr:`Call.repeatable`) and the attempt
failed in a way a later attempt may not: a connection error, a timeout, or a 502/503/504.
4xx answers are never retried (the same request would fail the same way), nor are other
5xx (a server bug).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from pipeline.client.calls import Call
from pipeline.client.errors import (
    ClientError,
    RejectedError,
    ServiceUnavailable,
    UnexpectedResponse,
    error_for_status,
)
from pipeline.client.models import parse_batch

T = TypeVar("T")

logger = logging.getLogger("pipeline.client")

RETRY_STATUSES = frozenset({502, 503, 504})
# Failures where no answer came and another attempt may get one. Not retried: a malformed
# URL or an unsupported scheme (httpx.UnsupportedProtocol, LocalProtocolError).
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
# Longest pause between two attempts, whatever backoff_s and the attempt number.
MAX_DELAY_S = 10.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: the pause before retry ``k`` (0 for the first) lies
    in ``[c/2, c]`` where ``c = min(cap_s, base_s * 2**k)``. The random half spreads clients
    that failed together; the fixed half guarantees a real pause."""

    base_s: float
    cap_s: float = MAX_DELAY_S

    def delay(self, retry: int, draw: float) -> float:
        """The pause for retry number ``retry`` given a uniform ``draw`` in [0, 1)."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(retry, 62))
        return ceiling * (0.5 + 0.5 * draw)


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: the status (None without an answer), an error code, a detail."""

    status: int | None
    error: str
    detail: str
    cause: BaseException | None = None

    @classmethod
    def of_exception(cls, exc: Exception) -> Failure:
        code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection_failed"
        return cls(None, code, f"{type(exc).__name__}: {exc}" if str(exc) else code, exc)

    @classmethod
    def of_answer(cls, status: int, content: bytes) -> Failure:
        body = _decode(content)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return cls(status, body["error"], str(body.get("detail") or ""))
        return cls(status, "unavailable", content.decode(errors="replace").strip()[:300])


@dataclass(slots=True)
class RetryPolicy:
    """``retries`` further attempts at most, each after :meth:`Backoff.delay`."""

    retries: int
    backoff: Backoff

    def pause(self, call: Call[Any], failure: Failure, attempts: int, draw: float) -> float:
        """The pause before the next attempt, after ``attempts`` attempts failed with
        ``failure``; raises :class:`ServiceUnavailable` when no attempt is left."""
        if not call.repeatable or attempts > self.retries:
            detail = f"no usable answer after {attempts} attempt{'s' * (attempts > 1)}"
            if failure.detail:
                detail += f"; last: {failure.detail}"
            raise ServiceUnavailable(
                detail,
                attempts=attempts,
                status=failure.status,
                error=failure.error,
                method=call.method,
                url=call.url,
            ) from failure.cause
        delay = self.backoff.delay(attempts - 1, draw)
        logger.info(
            "%s %s failed (%s); retry %d of %d in %.3f s",
            call.method,
            call.url,
            failure.status or failure.error,
            attempts,
            self.retries,
            delay,
        )
        return delay


def transport_error(call: Call[Any], exc: httpx.TransportError) -> ClientError:
    """A failure to send that another attempt would repeat (a malformed URL, an unsupported
    scheme), in the client's hierarchy; not retried."""
    return ClientError(
        f"{type(exc).__name__}: {exc}",
        error="transport_error",
        method=call.method,
        url=call.url,
    )


def check_options(timeout_s: float, retries: int, backoff_s: float) -> None:
    if not timeout_s > 0:
        raise ValueError("timeout_s must be positive")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError("retries must be an integer >= 0")
    if not backoff_s >= 0:
        raise ValueError("backoff_s must be >= 0")


def _decode(content: bytes) -> Any:
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def settle(call: Call[T], status: int, content: bytes) -> T:
    """The result of a final answer (not one to retry), or the exception it maps to."""
    body = _decode(content)
    if 200 <= status < 300:
        try:
            return call.parse(body)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            quoted = content[:200].decode(errors="replace")
            raise UnexpectedResponse(
                f"the answer is not the documented shape ({type(exc).__name__}: {exc}): {quoted!r}",
                status=status,
                error="unexpected_response",
                method=call.method,
                url=call.url,
            ) from exc
    if status == 400 and call.batch and isinstance(body, dict) and "results" in body:
        try:
            result = parse_batch(body, f"{call.batch}_id")
        except (KeyError, TypeError, ValueError):
            pass  # not the batch shape after all: the generic mapping below
        else:
            raise RejectedError(result, noun=call.batch, method=call.method, url=call.url)
    text = content.decode(errors="replace")
    error: ClientError = error_for_status(status, body, text, call.method, call.url)
    raise error
