"""The micro benchmarks run at a tiny size, and long runs show their progress (numbers are not asserted: speed is measured by
``pipeline bench``, not by tests)."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.tools.bench.common import Progress
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
