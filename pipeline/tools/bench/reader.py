"""``pipeline bench reader``: requests per second and latency of the reader with the whole
stack running, against a bare endpoint (Starlette, redis-py, uvicorn: one GET of the same
stored list) in the same run, under load from another process.

Each endpoint is loaded twice: with many connections (saturation: requests per second) and
with two (latency at a moderate load, which is what a page waiting for its list sees).
Related items are asked for the 100 most clicked items, each as often as it is popular
(:func:`related_paths`): a reader keeps ranked lists for a moment, so one item asked again
and again would measure only kept lists.
"""

from __future__ import annotations

import asyncio
import random
import sys
from typing import Any
from urllib.parse import quote

from pipeline.tools.bench.common import report
from pipeline.tools.bench.load import run_load
from pipeline.tools.bench.stack import Stack, running_stack
from pipeline.tools.local import free_port, wait_for_port

COLUMNS = [
    ("endpoint", "endpoint"),
    ("requests_per_s", "req/s"),
    ("vs_bare", "ratio"),
    ("p50_ms", "p50 ms (busy)"),
    ("p99_ms", "p99 ms (busy)"),
    ("moderate_p50_ms", "p50 ms (2 conn)"),
    ("moderate_p99_ms", "p99 ms (2 conn)"),
    ("target", "target"),
]


# Items whose related lists the load asks for: the most clicked, each as often as its rank
# in clicks says (1/rank: a product page is asked for as often as its item is popular).
RELATED_ITEMS = 100


async def related_paths(stack: Stack) -> list[str]:
    """Related-items paths of the :data:`RELATED_ITEMS` most clicked items, the item of rank
    ``r`` ``RELATED_ITEMS // r`` times, in a fixed shuffled order."""
    clicks = await stack.store.hgetall(stack.keys.popularity("click"))
    ranked = sorted(clicks, key=lambda item: (-float(clicks[item]), item))[:RELATED_ITEMS]
    if not ranked:
        raise RuntimeError("no item was clicked during the warm-up")
    paths = [
        f"/v1/items/{quote(item.decode(), safe='')}/related?n=10"
        for rank, item in enumerate(ranked, start=1)
        for _ in range(max(1, RELATED_ITEMS // rank))
    ]
    random.Random(7).shuffle(paths)
    return paths


async def run(seconds: float, connections: int, rate: float, warmup: int) -> list[dict[str, Any]]:
    async with running_stack(warmup, background_rate=rate) as stack:
        users = sorted(await stack.store.scan(f"{stack.settings.key_prefix}:foryou:user-*"))
        if not users:
            raise RuntimeError("no for-you list was written during the warm-up")
        user = users[0].rsplit(":", 1)[1]
        port = free_port()
        bare = stack.spawn(
            "bare-http",
            [sys.executable, "-m", "pipeline.tools.bench.bare", "http", str(port), users[0]],
        )
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 30.0, bare.process)
        related = await related_paths(stack)
        targets = [
            ("bare endpoint", f"http://127.0.0.1:{port}/", None),
            ("for you", f"{stack.reader_url}/v1/users/{user}/recommendations?n=10", None),
            ("trending", f"{stack.reader_url}/v1/trending?kind=clicks&window=1h&n=10", None),
            ("related", f"{stack.reader_url}{related[0]}", related),
        ]
        rows = []
        for name, url, paths in targets:
            busy = await asyncio.to_thread(run_load, url, seconds, connections, paths)
            moderate = await asyncio.to_thread(run_load, url, seconds, 2, paths)
            rows.append(
                {
                    "endpoint": name,
                    "requests_per_s": busy["requests_per_s"],
                    "p50_ms": busy["p50_ms"],
                    "p99_ms": busy["p99_ms"],
                    "moderate_p50_ms": moderate["p50_ms"],
                    "moderate_p99_ms": moderate["p99_ms"],
                    "errors": busy["errors"] + moderate["errors"],
                    "tool": busy["tool"],
                }
            )
        bare_rate = rows[0]["requests_per_s"]
        for row in rows:
            row["vs_bare"] = row["requests_per_s"] / bare_rate if bare_rate else 0.0
            if row["endpoint"] != "bare endpoint":
                ok = row["vs_bare"] >= 0.5 and row["moderate_p99_ms"] <= 10.0
                row["target"] = f">= 0.5x, p99 <= 10 ms: {'met' if ok else 'MISSED'}"
        return rows


def main(seconds: float, connections: int, rate: float, warmup: int, as_json: bool) -> str:
    print(f"[reader] warming up with {warmup:,} events", file=sys.stderr, flush=True)
    rows = asyncio.run(run(seconds, connections, rate, warmup))
    return report(rows, COLUMNS, as_json)
