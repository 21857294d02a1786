"""Personalised ranking: a click model learned from impressions and clicks.

- ``features.py``: what showing an item to a user in a context looks like (pure);
- ``model.py``: the online logistic regression over hashed features (pure);
- ``config.py``: the configuration from settings;
- ``agent.py``: agent group ``ranking``;
- ``read.py``: ranking a list with the stored weights;
- ``routes.py``: ``POST /v1/users/{user_id}/rank``.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.ranking.agent import RankingHandler

    return RankingHandler(settings, keys)


def _router(settings: Any) -> Any:
    from pipeline.features.ranking.routes import ranking_router

    return ranking_router(settings)


FEATURE = Feature("ranking", "personalised ranking of a list (click model)", _handler, _router)
