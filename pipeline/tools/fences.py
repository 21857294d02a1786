"""``pipeline fences reset``: forget where agent groups stand on a topic whose offsets
started again (a topic deleted and re-created, a broker that lost its data).

A fence (``{p}:fence:{group}:{topic}:{partition}``) says which offsets a group applied. When
the partition's offsets restart from 0, every message up to the old fence would be skipped
as already applied (the worker logs it: "the fence of ... is at offset N but the partition
ends at M"). Resetting deletes the fences of the groups on that topic. The workers must then
read the topic from its first offset again: start them with a new consumer group
(``PIPELINE_APP_ID``); on the other topics they replay what they applied before, and their
fences skip it. Stop the workers first: a running worker would write its fences again.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings
from pipeline.store.base import Writes
from pipeline.store.redis import connect
from pipeline.stream.fence import applied_offsets


async def reset_fences(
    settings: Settings, groups: Sequence[str], topic: str, partitions: Sequence[int] | None
) -> dict[str, list[int]]:
    """Delete the fences of ``groups`` on ``topic`` (``partitions``, default: every fenced
    one). Returns group -> the partitions whose fence was deleted."""
    keys = Keys(settings.key_prefix)
    store = connect(settings)
    deleted: dict[str, list[int]] = {}
    try:
        for group in groups:
            fenced = await applied_offsets(store, keys, group)
            found = sorted(
                int(slot.rsplit(":", 1)[1]) for slot in fenced if slot.rsplit(":", 1)[0] == topic
            )
            chosen = [p for p in found if partitions is None or p in partitions]
            if chosen:
                await store.apply(Writes().delete(*(keys.fence(group, topic, p) for p in chosen)))
            deleted[group] = chosen
    finally:
        await store.close()
    return deleted
