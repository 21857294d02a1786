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
from pipeline.features.personal.arena import SMALLEST_BLOCK, PartnerArena
from pipeline.features.personal.engine import Engine, PersonalConfig


def load_kernels(config: PersonalConfig) -> None:
    """Load the engine's compiled kernels by learning and ranking a few clicks on throwaway
    engines: one without and one with words and the freshness prior in its factor model
    (``words.py``, ``freshness.py``), whatever ``config`` says, and by growing a tiny partner
    arena (``arena.py``), so that every kernel is loaded."""
    text = np.zeros(config.content_dim, dtype=np.float32)
    text[0] = 1.0
    for rate in (0.0, 0.1):
        engine = Engine(replace(config, content_factor_rate=rate, freshness_rate=rate))
        engine.set_content({"a": text})
        engine.set_created({"a": 1_700_000_000_000})
        clicks = (("u", "a"), ("u", "b"), ("v", "b"), ("v", "c"), ("u", "c"))
        for n, (user, item) in enumerate(clicks):
            if n == len(clicks) - 1:
                engine.recommend("u", 3)  # builds partner lists, which the last click sets
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
    # A block that outgrows a full arena: the arena's move and reclaim.
    arena = PartnerArena(entries=SMALLEST_BLOCK)
    row = arena.new([0], [1.0])
    arena.set(
        [row] * (SMALLEST_BLOCK + 1), list(range(SMALLEST_BLOCK + 1)), [1.0] * (SMALLEST_BLOCK + 1)
    )
