"""The Redis key schema: a public contract for anyone who reads Redis directly.

Every key the project writes is built here and nowhere else. Ids are validated before
they become part of a key, so a crafted id can never address another key.

| key | type | contents |
|---|---|---|
| ``{p}:item:{item_id}`` | hash | catalog record: ``item_id``, ``categories`` (JSON), ``attributes`` (JSON), ``available`` (1/0), ``created_at``, ``price``, ``title`` |
| ``{p}:items`` | sorted set | every catalog item id, scored by ``created_at`` (epoch ms) |
| ``{p}:trending:{kind}:{window}:{gen}:all`` | sorted set | forward-decayed scores of items (see trending.py) |
| ``{p}:trending:{kind}:{window}:{gen}:cat:{category}`` | sorted set | the same within one category |
| ``{p}:fence:{agent}`` | hash | ``{topic}:{partition}`` -> last applied Kafka offset |
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.events import check_id


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one namespace prefix (``Settings.key_prefix``)."""

    prefix: str

    def item(self, item_id: str) -> str:
        return f"{self.prefix}:item:{check_id(item_id, 'item_id')}"

    def items(self) -> str:
        return f"{self.prefix}:items"

    def trending(self, kind: str, window: str, generation: int, category: str | None = None) -> str:
        check_id(kind, "kind")
        check_id(window, "window")
        base = f"{self.prefix}:trending:{kind}:{window}:{generation}"
        if category is None:
            return f"{base}:all"
        return f"{base}:cat:{check_id(category, 'category')}"

    def fence(self, agent: str) -> str:
        return f"{self.prefix}:fence:{check_id(agent, 'agent')}"

    def pattern(self) -> str:
        """Glob matching every key of this namespace (tests, cleanup)."""
        return f"{self.prefix}:*"


def fence_field(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"
