"""User segments: which users have an affinity for an item or an attribute value.

- ``model.py``: the fold of events into forward-decayed affinities, and the item blend (pure);
- ``config.py``: the configuration from settings;
- ``agent.py``: agent group ``segments``;
- ``read.py``: users for an item, users for an attribute value;
- ``routes.py``: ``GET /v1/items/{item_id}/segment`` and ``GET /v1/segments``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.segments.agent import SegmentsHandler

    return SegmentsHandler(settings, keys)


def _router(settings: Any) -> Any:
    from pipeline.features.segments.routes import segments_router

    return segments_router(settings)


FEATURE = Feature("segments", "users for an item or an attribute value", _handler, _router)
