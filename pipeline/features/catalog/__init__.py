"""Catalog: item records from the catalog topic into Redis, and the one reader of their fields.

- ``model.py``: the stored form of an item (pure);
- ``agent.py``: agent group ``catalog`` (later versions of an item replace earlier ones);
- ``read.py``: categories, attributes and availability of items, for every other feature.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.catalog.agent import CatalogHandler

    return CatalogHandler(keys, settings)


FEATURE = Feature("catalog", "item records: categories, attributes, availability", _handler)
