"""Every end-to-end benchmark runs, at a tiny size, and reports its baseline next to ours.

Figures are not asserted (speed is measured by ``pipeline bench``, never by a test); what is
asserted is that each part of each benchmark ran and measured something."""

from __future__ import annotations

import orjson
import pytest

from pipeline.tools.bench import freshness, ingest, memory, reader

pytestmark = pytest.mark.integration


def test_ingest_measures_the_worker_and_both_baselines() -> None:
    rows = orjson.loads(ingest.main(400, [1, 20], ["trending"], 1, as_json=True))
    assert [(row["run"], row["envelope"]) for row in rows] == [("trending", 1), ("trending", 20)]
    for row in rows:
        assert row["profile"] == "default"
        assert row["events"] > 0 and row["messages"] > 0
        assert row["events_per_s"] > 0 and row["bare_faust_msgs_per_s"] > 0
        assert row["raw_consumer_msgs_per_s"] > 0 and row["vs_bare_faust"] > 0
        # With envelopes the bare agent's short run is repeated: its median is the baseline.
        assert row["bare_faust_runs"] == (
            1 if row["envelope"] == 1 else ingest.BARE_RUNS_WITH_ENVELOPES
        )
    # Envelopes carry the same events in fewer messages.
    assert rows[0]["events"] == rows[1]["events"] and rows[1]["messages"] < rows[0]["messages"]


def test_ingest_runs_on_the_traffic_of_another_profile() -> None:
    (row,) = orjson.loads(
        ingest.main(400, [1], ["personal"], 1, as_json=True, profile_name="dense")
    )
    assert row["profile"] == "dense" and row["run"] == "personal"
    assert row["events"] > 0 and row["events_per_s"] > 0 and row["bare_faust_msgs_per_s"] > 0


def test_freshness_sees_every_probe_reflected() -> None:
    rows = orjson.loads(freshness.main([100.0], 3, 500, as_json=True))
    (row,) = rows
    assert row["probes"] == 3 and row["lost"] == 0
    assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert row["kafka_p50_ms"] > 0


def test_reader_loads_every_endpoint_and_the_bare_one() -> None:
    rows = orjson.loads(reader.main(1.0, 2, 0.0, 500, as_json=True))
    assert [row["endpoint"] for row in rows] == ["bare endpoint", "for you", "trending", "related"]
    for row in rows:
        assert row["requests_per_s"] > 0 and row["errors"] == 0
        assert row["p99_ms"] >= row["p50_ms"] > 0


def test_memory_reads_redis_at_each_checkpoint() -> None:
    rows = orjson.loads(memory.main([400, 800], 20, 10, as_json=True))
    assert [row["events"] for row in rows] == [400, 800]
    assert all(row["used_memory_mb"] > 0 and row["keys"] > 0 for row in rows)
    assert rows[1]["growth"].endswith("%") and "target" in rows[1]
