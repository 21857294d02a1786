"""Trending: forward-decayed popularity per kind, window and category.

- ``model.py``: the fold of a batch of events into per-key increments (pure);
- ``agent.py``: agent group ``trending``;
- ``read.py``: the current top items of one trending set;
- ``routes.py``: ``GET /v1/trending``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.trending.agent import TrendingHandler

    return TrendingHandler(settings, keys)


def _router(settings: Any) -> Any:
    from pipeline.features.trending.routes import trending_router

    return trending_router(settings)


def _fast(settings: Any) -> Any:
    from pipeline.features.trending.routes import fast_routes

    return fast_routes(settings)


FEATURE = Feature(
    "trending", "popular items per kind, window and category", _handler, _router, _fast
)
