"""The micro benchmarks run at a tiny size, and long runs show their progress (numbers are not asserted: speed is measured by
``pipeline bench``, not by tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.registry import declared_topics
from pipeline.store.base import Writes
from pipeline.store.memory import MemoryStore
from pipeline.tools.bench.common import Progress, wait_applied
from pipeline.tools.bench.micro import main, run_all


def test_micro_benchmarks_run_and_report_both_sides() -> None:
    rows = asyncio.run(run_all(300))
    assert [row["name"] for row in rows] == [
        "decode JSON",
        "parse (envelopes of 100)",
        "learn (all personal models)",
        "click model, a batch",
        "trending writes to Redis",
        "personal agent batches",
        "default worker batches",
    ]
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0 and row["baseline_name"]


def test_the_table_names_every_benchmark() -> None:
    table = main(200, as_json=False)
    assert "click model, a batch" in table.splitlines()[2 + 3]
    assert table.splitlines()[1].startswith("---")


def test_progress_prints_every_tenth_when_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = Progress("demo")
    progress.live = False
    for done in range(0, 101):
        progress.bar("events", done, 100)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[demo] events 0/100" and lines[-1] == "[demo] events 100/100"
    assert len(lines) == 11


def test_progress_redraws_one_line_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress("demo")
    progress.live = True
    progress.bar("events", 5, 10)
    progress.bar("events", 10, 10)
    err = capsys.readouterr().err
    assert err.count("\r") == 2 and err.endswith("10/10\n")
    assert "[" + "#" * 15 + "." * 15 + "] 5/10" in err


class NoScanStore(MemoryStore):
    """The store a worker under test shares: a poll that walks its keyspace fails."""

    async def scan(self, pattern: str) -> list[str]:
        raise AssertionError(f"the fence poll scanned the keyspace for {pattern}")


async def poll_after_five_messages(extra: int, timeout_s: float, log: Path) -> tuple[float, float]:
    """Fences saying 5 messages (offsets 0..4) applied on every declared partition of
    ``trending`` and ``catalog``, then the poll waiting for that many plus ``extra``."""
    settings = load_settings(key_prefix="poll")
    keys = Keys(settings.key_prefix)
    topics = declared_topics(settings)
    store = NoScanStore()
    writes = Writes()
    expected = {}
    for group in ("trending", "catalog"):
        expected[group] = extra
        for spec in topics.for_agent(group):
            for partition in range(spec.partitions):
                writes.set(keys.fence(group, spec.name, partition), b"4")
                expected[group] += 5
    await store.apply(writes)
    return await wait_applied(store, settings, expected, timeout_s, log)


def test_the_fence_poll_reads_the_declared_fences_without_a_scan(tmp_path: Path) -> None:
    first, last = asyncio.run(poll_after_five_messages(0, 5.0, tmp_path / "worker.log"))
    assert first <= last


def test_the_fence_poll_waits_for_every_message(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="did not apply every message"):
        asyncio.run(poll_after_five_messages(1, 0.1, tmp_path / "worker.log"))


def test_the_benchmarks_traffic_comes_from_the_profile_asked_for_and_ends_about_now() -> None:
    import time

    from pipeline.tools.bench.common import world

    default, dense = world(), world(profile_name="dense")
    assert (len(default.catalog()), len(dense.catalog())) == (500, 3000)
    for source in (default, dense):
        # Trending reads the current hour: the traffic's timestamps lie in the last one.
        stamps = [event["timestamp"] for event in source.events(200)]
        assert time.time() * 1000 - 3_700_000 < min(stamps) <= max(stamps) < time.time() * 1000


def test_traffic_longer_than_an_hour_ends_before_now_not_in_the_future() -> None:
    import time

    from pipeline.tools.bench.common import world

    # 5,000 events at one a second span 83 minutes: started an hour ago, the last 23 minutes
    # would lie in the future (and be rejected as such).
    stamps = [
        event["timestamp"] for event in world(events_per_second=1.0, events=5000).events(5000)
    ]
    now_ms = time.time() * 1000
    assert now_ms - 5_100_000 < stamps[0] and stamps[-1] - stamps[0] >= 4_990_000
    assert now_ms - 120_000 < stamps[-1] < now_ms


def test_charts_are_drawn_from_the_saved_results_found(tmp_path: Path) -> None:
    import orjson

    from pipeline.tools.bench import plot

    ingest = [
        {
            "profile": "default",
            "run": "default",
            "envelope": 1,
            "events_per_s": 8000.0,
            "bare_faust_msgs_per_s": 13000.0,
        },
        {
            "profile": "dense",
            "run": "personal",
            "envelope": 20,
            "events_per_s": 11000.0,
            "bare_faust_msgs_per_s": 5500.0,
        },
    ]
    memory = [{"events": 1000, "used_memory_mb": 3.0}, {"events": 3000, "used_memory_mb": 3.1}]
    (tmp_path / "ingest.json").write_bytes(orjson.dumps(ingest))
    (tmp_path / "memory.json").write_bytes(orjson.dumps(memory))
    written = plot.main(tmp_path, tmp_path / "charts")
    # Only the results saved are drawn, each as a PNG.
    assert sorted(path.name for path in written) == ["bench-ingest.png", "bench-memory.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    # A run of another profile says so under its bar; the default profile's needs no word.
    assert plot.ingest_labels(ingest) == ["default\n1/msg", "personal\n20/msg\ndense"]
