"""Related items: also clicked, also bought, viewed then bought.

Learned by the ``personal`` agent group, because pairing an event with the same user's
recent history needs that history, which only the worker owning the user's partition has.

- ``model.py``: pairing rules, co-occurrence counts, the popularity discount (pure);
- ``counts.py``, ``arena.py``: the counts' lists, in item numbers, in one arena (pure);
- ``config.py``: the configuration from settings;
- ``state.py``: what the personal agent reads and writes of it in Redis;
- ``read.py``: related items of one item, ranked now;
- ``routes.py``: ``GET /v1/items/{item_id}/related``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _router(settings: Any) -> Any:
    from pipeline.features.related.routes import related_router

    return related_router(settings)


def _fast(settings: Any) -> Any:
    from pipeline.features.related.routes import fast_routes

    return fast_routes(settings)


FEATURE = Feature("related", "items that co-occur in users' recent histories", None, _router, _fast)
