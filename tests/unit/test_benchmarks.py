"""The benchmarks run at a tiny size (numbers are not asserted: speed is for `make bench`)."""

from __future__ import annotations

import asyncio

from benchmarks.suite import run_all


def test_benchmarks_run_and_report_both_sides():
    rows = asyncio.run(run_all(300))
    assert [row["name"] for row in rows] == [
        "decode JSON",
        "parse (envelopes of 100)",
        "learn (all personal models)",
        "trending writes to Redis",
        "personal agent batches",
    ]
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0 and row["baseline_name"]
