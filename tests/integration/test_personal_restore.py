"""Model state survives a restart: a worker that reloads from Redis predicts what the
original would have (docs/architecture.md, "Exactly-once effects"; README "Model state lives
in Redis")."""

from __future__ import annotations

import math
import time

import pytest

from pipeline.core.events import event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.features.personal import state
from pipeline.features.personal.agent import PersonalHandler
from pipeline.store.redis import connect
from pipeline.stream.batch import RawMessage, process_batch
from pipeline.stream.fence import Position
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def no_dead_letters(records: list) -> None:
    raise AssertionError(f"unexpected dead letters: {records}")


async def test_reloaded_worker_predicts_what_the_original_would(isolated: Settings):
    world = SyntheticWorld(
        SyntheticConfig(
            seed=5, n_users=300, n_items=240, start_ms=int(time.time() * 1000) - 3_600_000
        )
    )
    events = [event_from_dict(raw) for raw in world.events(6000)]
    messages = [
        RawMessage(Position("events", 0, i), None, e.to_json()) for i, e in enumerate(events)
    ]
    keys = Keys(isolated.key_prefix)
    store = connect(isolated)
    original = PersonalHandler(isolated, keys)
    try:
        for start in range(0, len(messages), 500):
            await process_batch(
                store, keys, original, messages[start : start + 500], no_dead_letters
            )

        restored = PersonalHandler(isolated, keys)
        users = sorted({e.user_id for e in events})
        probe = [
            event_from_dict(
                {
                    "event_id": f"probe-{u}",
                    "type": "impression",
                    "user_id": u,
                    "items": ["item-0"],
                    "timestamp": events[-1].timestamp_ms,
                }
            )
            for u in users
        ]
        # Load exactly what a restarted worker loads: item state, then each user on sight.
        await state.load_items(store, keys, restored.engine, int(time.time() * 1000))
        restored.items_loaded = True
        await restored._load_users(store, probe)

        # More than 128 items: Redis returns the hash in arbitrary order, yet the restored
        # model has the original item order (negative sampling depends on it).
        assert len(original.engine.model.item_ids) > 128
        assert restored.engine.model.item_ids == original.engine.model.item_ids
        compared = 0
        for user in users:
            before = original.engine.recommend(user, 20)
            after = restored.engine.recommend(user, 20)
            assert [r.item_id for r in after] == [r.item_id for r in before], user
            for a, b in zip(after, before, strict=True):
                # Factors are float32 and the restored matrix lists items in another order,
                # so dot products may round differently in the last float32 bit.
                assert math.isclose(a.score, b.score, rel_tol=1e-6, abs_tol=1e-6)
                assert a.source == b.source
            compared += bool(before)
        assert compared > 100
        for relation in ("also_clicked", "also_bought", "viewed_then_bought"):
            assert (
                restored.engine.cooc.counts()[relation] == original.engine.cooc.counts()[relation]
            )
    finally:
        await store.close()
