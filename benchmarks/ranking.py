"""Microbenchmark of the click model's learning step (features, hashing, SGD; no Redis)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from pipeline.features.ranking.features import observations
from pipeline.features.ranking.model import ClickModel


def benchmark(
    n_events: int = 2000, items_per_impression: int = 10, seed: int = 0
) -> dict[str, float]:
    """Microseconds per impression event and per click, features to SGD step (no Redis).

    ``python -m benchmarks.ranking``
    """
    rng = np.random.default_rng(seed)
    categories = {f"i{n}": [f"c{n % 20}", f"c{n % 7 + 20}"] for n in range(1000)}
    context = {"device": "mobile", "page": "home", "locale": "de-DE"}
    impressions = [
        SimpleNamespace(
            event_type="impression",
            user_id=f"u{rng.integers(500)}",
            item_id=None,
            items=tuple(f"i{k}" for k in rng.integers(0, 1000, items_per_impression)),
            context=context,
        )
        for _ in range(n_events)
    ]
    clicks = [
        SimpleNamespace(
            event_type="click",
            user_id=e.user_id,
            item_id=e.items[0],
            items=(),
            context={**context, "position": 0},
        )
        for e in impressions
    ]
    model = ClickModel()
    out = {}
    for name, events in (("impression_us", impressions), ("click_us", clicks)):
        started = time.perf_counter()
        for event in events:
            for names, y, weight in observations(event, categories, 0.3, 1.0):
                model.learn_indexes(model.indexes(names), y, weight)
        out[name] = (time.perf_counter() - started) / len(events) * 1e6
    started = time.perf_counter()
    model.drain_deltas()
    out["drain_us_per_event"] = (time.perf_counter() - started) / (2 * n_events) * 1e6
    return out


if __name__ == "__main__":
    print(benchmark())
