"""Content: items' text as vectors, and the items most similar by text.

- ``model.py``: the vectoriser: tokens, hashing, document frequencies, TF-IDF (pure);
- ``neighbours.py``: every item's top-K content neighbours, updated per batch (pure);
- ``engine.py``: catalog records to vector and neighbour changes (pure);
- ``config.py``: the configuration from settings;
- ``state.py``: what the agent loads from and writes to Redis;
- ``agent.py``: agent group ``content`` (reads the catalog topic);
- ``read.py``: an item's similar items, ranked, for ``GET /v1/items/{item_id}/related
  ?relation=similar_content`` (served by the related feature's route) and scenarios.
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.content.agent import ContentHandler

    return ContentHandler(settings, keys)


FEATURE = Feature("content", "item texts as vectors; items similar by text", _handler)
