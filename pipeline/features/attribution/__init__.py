"""Attribution: what recommendations achieved, counted from the events that carry their
``recommendation_id`` back.

- ``model.py``: parsing ids, the counting rule, rates (pure);
- ``agent.py``: agent group ``attribution``;
- ``read.py``: a scenario's statistics over a window; the reader's count of served items.
The route (``GET /v1/scenarios/{name}/stats``) lives with the scenarios.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.attribution.agent import AttributionHandler

    return AttributionHandler(settings, keys)


FEATURE = Feature("attribution", "impressions, clicks and conversions of recommendations", _handler)
