"""Personal recommendations: the user's history, online latent factors, the for-you blend.

- ``history.py``, ``mf.py``, ``neighbours.py`` (the co-occurrence lists in the factor
  model's item indexes): the pure models;
- ``engine.py``: learning (one event into every model, what it changed);
- ``recommend.py``: the for-you blend and its attribution;
- ``config.py``: the configuration from settings;
- ``state.py``: what the agent loads from and writes to Redis;
- ``agent.py``: agent group ``personal`` (also learns related items: ``features.related``);
- ``read.py``, ``routes.py``: ``GET /v1/users/{user_id}/recommendations``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.personal.agent import PersonalHandler

    return PersonalHandler(settings, keys)


def _router(settings: Any) -> Any:
    from pipeline.features.personal.routes import personal_router

    return personal_router(settings)


def _fast(settings: Any) -> Any:
    from pipeline.features.personal.routes import fast_routes

    return fast_routes(settings)


FEATURE = Feature("personal", "for-you lists from factors and history", _handler, _router, _fast)
