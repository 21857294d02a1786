"""The client's exceptions: one hierarchy under :class:`ClientError`.

Every error carries the HTTP ``status`` (None when no answer came), the server's ``error``
code (the ``{"error", "detail"}`` body every service answers with; a client code such as
``connection_failed`` when there was no answer) and a readable ``detail``. Messages name the
method and URL of the request, never its headers: the API key appears in none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.client.models import BatchResult

# Longest server text quoted in a message when the body is not the documented JSON shape.
_MAX_QUOTED = 300


class ClientError(Exception):
    """Base of every error raised by :class:`~pipeline.client.Client` and
    :class:`~pipeline.client.AsyncClient` for a request that did not succeed."""

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error: str | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.error = error
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f"{self.method} {self.url}: " if self.method else ""
        status = f"{self.status} " if self.status is not None else ""
        code = f"{self.error}: " if self.error else ""
        return f"{where}{status}{code}{self.detail}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, error={self.error!r}, "
            f"detail={self.detail!r}, method={self.method!r}, url={self.url!r})"
        )


class AuthError(ClientError):
    """401 (no valid API key) or 403 (the key may not do this, e.g. a read key on a write)."""


class NotFoundError(ClientError):
    """404: an unknown scenario (``unknown_scenario``) or path (``not_found``)."""


class InvalidRequestError(ClientError):
    """Any other 4xx: a bad parameter (422), a body over a limit (413), a malformed body (400).
    Never retried: the same request would fail the same way."""


class RejectedError(InvalidRequestError):
    """400 from ``track`` or ``publish_items``: every element was rejected.

    ``reasons[i]`` is why element ``i`` was rejected; ``result`` is the full answer.
    """

    def __init__(self, result: BatchResult, *, noun: str, method: str = "", url: str = "") -> None:
        self.result = result
        self.reasons: tuple[str, ...] = tuple(r.reason or "rejected" for r in result.results)
        shown = "; ".join(f"[{i}] {reason}" for i, reason in enumerate(self.reasons[:5]))
        more = f"; and {len(self.reasons) - 5} more" if len(self.reasons) > 5 else ""
        super().__init__(
            f"every {noun} was rejected: {shown}{more}",
            status=400,
            error="rejected",
            method=method,
            url=url,
        )


class ServerError(ClientError):
    """A 5xx other than 502/503/504 (a bug on the server side); not retried."""


class ServiceUnavailable(ClientError):
    """No usable answer after every attempt: connection errors, timeouts, 502/503/504.

    ``attempts`` is how many requests were sent; ``status`` and ``error`` describe the last
    failure (``status`` None and ``error`` ``connection_failed`` or ``timeout`` when no
    answer came).
    """

    def __init__(self, detail: str, *, attempts: int, **where: Any) -> None:
        super().__init__(detail, **where)
        self.attempts = attempts


class UnexpectedResponse(ClientError):
    """A success status whose body is not the documented shape (a proxy page, another
    version of the service)."""


def error_for_status(status: int, body: Any, text: str, method: str, url: str) -> ClientError:
    """The exception for a non-2xx answer; ``body`` is the decoded JSON or None."""
    error: str | None = None
    detail = ""
    if isinstance(body, dict):
        code, said = body.get("error"), body.get("detail")
        error = code if isinstance(code, str) else None
        detail = said if isinstance(said, str) else ""
    if not detail:
        detail = text.strip()[:_MAX_QUOTED] or "no detail given"
    kind: type[ClientError]
    if status in (401, 403):
        kind = AuthError
    elif status == 404:
        kind = NotFoundError
    elif status in (502, 503, 504):
        # Reached only when retries are exhausted or disabled (see ServiceUnavailable).
        return ServiceUnavailable(
            detail, attempts=1, status=status, error=error, method=method, url=url
        )
    elif 400 <= status < 500:
        kind = InvalidRequestError
    elif status >= 500:
        kind = ServerError
    else:
        kind = UnexpectedResponse
    return kind(detail, status=status, error=error, method=method, url=url)
