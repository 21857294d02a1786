"""A typed Python client of the collector and the reader (docs/python-client.md).

``Client`` (sync) and ``AsyncClient`` share one API: ``track``, ``publish_items``,
``forget_user``, ``recommend``, ``for_you``, ``related``, ``trending``, ``rank``,
``scenarios`` and ``stats``. Failures raise subclasses of :class:`ClientError`.
It imports httpx and orjson only: nothing of the agents, the store or the HTTP services.
"""

from pipeline.client.aio import AsyncClient
from pipeline.client.errors import (
    AuthError,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    RejectedError,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
)
from pipeline.client.models import (
    BatchResult,
    ForYou,
    Funnel,
    IndexResult,
    Ranking,
    Recommendations,
    Recommended,
    Related,
    Scenario,
    ScenarioStats,
    Trending,
)
from pipeline.client.sync import Client

__all__ = [
    "AsyncClient",
    "AuthError",
    "BatchResult",
    "Client",
    "ClientError",
    "ForYou",
    "Funnel",
    "IndexResult",
    "InvalidRequestError",
    "NotFoundError",
    "Ranking",
    "Recommendations",
    "Recommended",
    "Related",
    "RejectedError",
    "Scenario",
    "ScenarioStats",
    "ServerError",
    "ServiceUnavailable",
    "Trending",
    "UnexpectedResponse",
]
