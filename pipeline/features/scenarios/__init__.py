"""Scenarios: named recommendation requests of a website's pages, each an ordered list of
stages that blend sources, with filters, promotions and exploration (``scenarios.yaml``).

Serves from what the other features keep; learns nothing itself (what scenarios achieve is
counted by the ``attribution`` feature).

- ``config.py``: loading and checking ``scenarios.yaml``;
- ``filters.py``: filters, conditions, diversity caps (pure);
- ``engine.py``: stages, reserved slots and the list served (pure);
- ``sources.py``: candidates of each source kind, read from Redis;
- ``read.py``: one request, end to end;
- ``routes.py``: ``GET /v1/recommendations``, ``/v1/scenarios``, ``/v1/scenarios/{name}/stats``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _router(settings: Any) -> Any:
    from pipeline.features.scenarios.routes import scenarios_router

    return scenarios_router(settings)


FEATURE = Feature(
    "scenarios", "pages' recommendations with stages, filters and fallbacks", None, _router
)
