"""The Redis key schema: a public contract for anyone who reads Redis directly.

Every key the project writes is built here and nowhere else. Ids are validated before
they become part of a key, so a crafted id can never address another key.

| key | type | contents |
|---|---|---|
| ``{p}:item:{item_id}`` | hash | catalog record: ``item_id``, ``categories`` (JSON), ``attributes`` (JSON), ``available`` (1/0), ``created_at``, ``price``, ``title`` |
| ``{p}:items`` | sorted set | every catalog item id, scored by ``created_at`` (epoch ms) |
| ``{p}:items:unavailable`` | set | items whose latest catalog record says ``available: false`` |
| ``{p}:catalog:version`` | string | counter the catalog agent increments with every batch of items (readers cache availability, and workers the items' categories and attributes, until it moves) |
| ``{p}:trending:{kind}:{window}:{gen}:all`` | sorted set | forward-decayed scores of items (see pipeline.core.decay) |
| ``{p}:trending:{kind}:{window}:{gen}:cat:{category}`` | sorted set | the same within one category |
| ``{p}:fence:{agent}:{topic}:{partition}`` | string | last Kafka offset the agent group applied from that partition |
| ``{p}:seen:{agent}`` | sorted set | event ids applied recently (score: when), for de-duplication |
| ``{p}:user:{user_id}:history`` | string | JSON: recent interactions, exclusions, blacklist (TTL: idle users expire) |
| ``{p}:user:{user_id}:alias`` | string | the user id an anonymous id became at login (TTL); the user's history lists the anonymous ids that became the user |
| ``{p}:user:{user_id}:factors`` | string | base64 float32 latent vector of the user (TTL) |
| ``{p}:foryou:{user_id}`` | string | JSON list of the user's current "for you" items with scores and sources (TTL) |
| ``{p}:foryou:pending`` | sorted set | users whose list waits for a recompute (score: when it became stale, epoch ms) |
| ``{p}:mf:items`` | hash | item_id -> packed float32 ``[index, bias, factors...]`` (added to as deltas) |
| ``{p}:mf:words`` | hash | content vector bucket -> packed float32 ``[bias, factors...]`` of that word in the factor model (added to as deltas; ``content_factor_rate``) |
| ``{p}:personal:trending:{gen}`` | hash | item_id -> forward-decayed count (1-day half-life) behind cold users' lists |
| ``{p}:related:{relation}:{item_id}`` | sorted set | partner item -> co-occurrence count (capped) |
| ``{p}:related:anchors`` | set | items that have related lists (loaded by a starting personal worker) |
| ``{p}:popularity:{signal}`` | hash | item_id -> count of positive events (signal: click, conversion) |
| ``{p}:rank:weights`` | hash | hashed feature index -> weight of the click model |
| ``{p}:rank:sums`` | hash | hashed feature index -> the click model's sum of squared gradients (AdaGrad; learner only) |
| ``{p}:segment:item:{item_id}:{gen}`` | sorted set | user_id -> forward-decayed affinity for one item (capped; ``-inf`` marks a blacklist) |
| ``{p}:segment:attr:{attribute}:{value}:{gen}`` | sorted set | the same for an attribute value (``attribute`` has no ``:``; ``category`` = catalog categories) |
| ``{p}:stats:{scenario}:{hour}`` | hash | counts of one scenario in one hour (epoch hours): ``served``, ``impressions``, ``clicks``, ``conversions``, and each per stage as ``clicks:{stage}`` |
| ``{p}:stats:{scenario}:{metric}:{day}`` | sorted set | item -> count of ``metric`` in one day (epoch days) |
| ``{p}:attribution:{user_id}`` | hash | item -> ``{recommendation_id} {timestamp_ms}`` of the user's recent clicks on recommendations (TTL), to credit later conversions |
| ``{p}:user:{user_id}:attributes`` | hash | attribute name -> JSON value of the user's latest record (``POST /v1/users``; erased by a ``forget``) |
| ``{p}:content:items`` | set | items that have a content vector |
| ``{p}:content:vector:{item_id}`` | string | the item's content vector: ``content_dim`` little-endian float32 (hashed TF-IDF of its text, L2-normalised) |
| ``{p}:content:df`` | hash | bucket index -> how many items' texts hold it; field ``documents``: how many items have a vector |
| ``{p}:content:similar:{item_id}`` | sorted set | the item's most similar items by text -> cosine similarity (top ``content_neighbours``) |
| ``{p}:content:version`` | string | counter the content agent increments with every batch (its workers reload when another moved it) |
| ``{p}:content:changed`` | sorted set | item -> the content version whose batch last set or deleted its vector (the personal agent reads what changed since it last looked) |
| ``{p}:user:{user_id}:segments:{gen}`` | sorted set | segments the user's events of generation ``gen`` put the user in (``i:{item_id}``, ``a:{attribute}:{value}``; score 0), so in their keys of ``gen`` and ``gen + 1``: what a ``forget`` removes the user from; expires with those keys |
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.ids import InvalidInput, check_id


def _plain(value: str, name: str) -> str:
    """An id without ':' (a ':' would let two different parts build the same key)."""
    if ":" in check_id(value, name):
        raise InvalidInput(f"{name} may not contain ':'")
    return value


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds keys under one namespace prefix (``Settings.key_prefix``)."""

    prefix: str

    def item(self, item_id: str) -> str:
        return f"{self.prefix}:item:{check_id(item_id, 'item_id')}"

    def items(self) -> str:
        return f"{self.prefix}:items"

    def unavailable_items(self) -> str:
        return f"{self.prefix}:items:unavailable"

    def catalog_version(self) -> str:
        return f"{self.prefix}:catalog:version"

    def trending(self, kind: str, window: str, generation: int, category: str | None = None) -> str:
        check_id(kind, "kind")
        check_id(window, "window")
        base = f"{self.prefix}:trending:{kind}:{window}:{generation}"
        if category is None:
            return f"{base}:all"
        return f"{base}:cat:{check_id(category, 'category')}"

    def fence(self, agent: str, topic: str, partition: int) -> str:
        # One key per partition: a worker WATCHes only the partitions it owns, so workers of
        # one group never abort each other's transactions.
        return f"{self.fence_prefix(agent)}{check_id(topic, 'topic')}:{int(partition)}"

    def fence_prefix(self, agent: str) -> str:
        return f"{self.prefix}:fence:{check_id(agent, 'agent')}:"

    def seen(self, agent: str) -> str:
        return f"{self.prefix}:seen:{check_id(agent, 'agent')}"

    def _user(self, user_id: str, part: str) -> str:
        return f"{self.prefix}:user:{check_id(user_id, 'user_id')}:{part}"

    def user_history(self, user_id: str) -> str:
        return self._user(user_id, "history")

    def user_alias(self, user_id: str) -> str:
        return self._user(user_id, "alias")

    def user_factors(self, user_id: str) -> str:
        return self._user(user_id, "factors")

    def user_segments(self, user_id: str, generation: int) -> str:
        # The generation is the last part, after a fixed word: unambiguous although user
        # ids may contain ':'.
        return f"{self._user(user_id, 'segments')}:{int(generation)}"

    def foryou(self, user_id: str) -> str:
        return f"{self.prefix}:foryou:{check_id(user_id, 'user_id')}"

    def foryou_pending(self) -> str:
        return f"{self.prefix}:foryou:pending"

    def mf_items(self) -> str:
        return f"{self.prefix}:mf:items"

    def mf_words(self) -> str:
        return f"{self.prefix}:mf:words"

    def mf_freshness(self) -> str:
        return f"{self.prefix}:mf:freshness"

    def cold_trending(self, generation: int) -> str:
        return f"{self.prefix}:personal:trending:{int(generation)}"

    def related(self, relation: str, item_id: str) -> str:
        return (
            f"{self.prefix}:related:{check_id(relation, 'relation')}:{check_id(item_id, 'item_id')}"
        )

    def related_anchors(self) -> str:
        return f"{self.prefix}:related:anchors"

    def popularity(self, signal: str) -> str:
        return f"{self.prefix}:popularity:{check_id(signal, 'signal')}"

    def rank_weights(self) -> str:
        return f"{self.prefix}:rank:weights"

    def rank_sums(self) -> str:
        return f"{self.prefix}:rank:sums"

    def item_segment(self, item_id: str, generation: int) -> str:
        return f"{self.prefix}:segment:item:{check_id(item_id, 'item_id')}:{int(generation)}"

    def attribute_segment(self, attribute: str, value: str, generation: int) -> str:
        # A ':' in the attribute name would make "a:b"+"c" and "a"+"b:c" the same key.
        if ":" in check_id(attribute, "attribute"):
            raise InvalidInput("attribute names may not contain ':'")
        return (
            f"{self.prefix}:segment:attr:{attribute}:{check_id(value, 'value')}:{int(generation)}"
        )

    def stats(self, scenario: str, hour: int) -> str:
        return f"{self.prefix}:stats:{_plain(scenario, 'scenario')}:{int(hour)}"

    def stats_items(self, scenario: str, metric: str, day: int) -> str:
        scenario = _plain(scenario, "scenario")
        return f"{self.prefix}:stats:{scenario}:{_plain(metric, 'metric')}:{int(day)}"

    def attribution(self, user_id: str) -> str:
        return f"{self.prefix}:attribution:{check_id(user_id, 'user_id')}"

    def user_attributes(self, user_id: str) -> str:
        return self._user(user_id, "attributes")

    def content_items(self) -> str:
        return f"{self.prefix}:content:items"

    def content_vector(self, item_id: str) -> str:
        return f"{self.prefix}:content:vector:{check_id(item_id, 'item_id')}"

    def content_df(self) -> str:
        return f"{self.prefix}:content:df"

    def content_similar(self, item_id: str) -> str:
        return f"{self.prefix}:content:similar:{check_id(item_id, 'item_id')}"

    def content_version(self) -> str:
        return f"{self.prefix}:content:version"

    def content_changed(self) -> str:
        return f"{self.prefix}:content:changed"

    def pattern(self) -> str:
        """Glob matching every key of this namespace (tests, cleanup)."""
        return f"{self.prefix}:*"
