"""Loading the personal engine's compiled kernels before they are needed.

numba compiles a kernel, or loads it from its cache, on first use: one to two seconds once
per process. A worker loads them before it consumes (``PersonalHandler.warm``) and
``pipeline evaluate`` before its timer starts, so that neither a first batch nor a replay's
figure carries that second.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.core.events import event_from_dict
from pipeline.features.personal.engine import Engine, PersonalConfig
from pipeline.features.related.arena import SMALLEST_BLOCK
from pipeline.features.related.counts import CountLists


def load_kernels(config: PersonalConfig) -> None:
    """Load the engine's compiled kernels by learning and ranking a few clicks on throwaway
    engines: one without and one with words and the freshness prior in its factor model
    (``words.py``, ``freshness.py``), whatever ``config`` says, and by growing a tiny
    co-occurrence arena (``pipeline.features.related.counts``), so that every kernel is
    loaded."""
    text = np.zeros(config.content_dim, dtype=np.float32)
    text[0] = 1.0
    for rate in (0.0, 0.1):
        engine = Engine(replace(config, content_factor_rate=rate, freshness_rate=rate))
        engine.set_content({"a": text})
        engine.set_created({"a": 1_700_000_000_000})
        clicks = (("u", "a"), ("u", "b"), ("v", "b"), ("v", "c"), ("u", "c"))
        for n, (user, item) in enumerate(clicks):
            engine.learn(
                event_from_dict(
                    {
                        "event_id": f"load-{n}",
                        "type": "click",
                        "user_id": user,
                        "item_id": item,
                        "timestamp": 1_700_000_000_000 + n,
                    }
                )
            )
        engine.recommend("u", 3)
        engine.related("a", 3)
    # A list that outgrows its block in a full arena: the arena's move and reclaim.
    lists = CountLists(("r",), longest=SMALLEST_BLOCK, entries=SMALLEST_BLOCK)
    lists.add([("r", "a", f"p{k}", 1.0) for k in range(SMALLEST_BLOCK + 1)])
    lists.take_long()
