"""``pipeline bench``: the benchmarks, each against a baseline in the same run
(docs/performance.md)."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.data import PROFILE_NAMES
from pipeline.cli.main import cli


@cli.group()
def bench() -> None:
    """Benchmarks, each against a baseline in the same run (docs/performance.md)."""


def _print(table: str) -> None:
    click.echo(table)


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


@bench.command("ingest")
@click.option("--events", type=click.IntRange(min=100), default=50_000, show_default=True)
@click.option("--envelopes", default="1,20", show_default=True, help="Events per message.")
@click.option(
    "--runs",
    default="default,trending,personal,ranking,segments",
    show_default=True,
    help="default (every group in one worker) and/or single groups.",
)
@click.option("--repeat", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--profile",
    "profile_name",
    type=click.Choice(PROFILE_NAMES),
    default="default",
    show_default=True,
    help="The synthetic traffic (`pipeline generate --profile`). dense: long histories "
    "(with --events 300000, about 150 events per user), 3,000 items, ratings. ratings: "
    "a ratings log (MovieLens-like), about 50 pairs per good rating.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_ingest(
    events: int, envelopes: str, runs: str, repeat: int, profile_name: str, as_json: bool
) -> None:
    """Events applied per second by a worker vs a bare Faust agent and a raw consumer."""
    from pipeline.tools.bench.ingest import main

    _print(main(events, _numbers(envelopes), runs.split(","), repeat, as_json, profile_name))


@bench.command("freshness")
@click.option("--rates", default="1000,5000", show_default=True, help="Background events/s.")
@click.option("--probes", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--warmup", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_freshness(rates: str, probes: int, warmup: int, as_json: bool) -> None:
    """Event produced to reader reflecting it (p50/p95/p99) vs Kafka delivery alone."""
    from pipeline.tools.bench.freshness import main

    _print(main([float(rate) for rate in _numbers(rates)], probes, warmup, as_json))


@bench.command("reader")
@click.option("--seconds", type=click.FloatRange(min=1), default=10.0, show_default=True)
@click.option("--connections", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--rate", type=float, default=200.0, show_default=True, help="Background ev/s.")
@click.option("--warmup", type=click.IntRange(min=100), default=20_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_reader(seconds: float, connections: int, rate: float, warmup: int, as_json: bool) -> None:
    """Reader requests/s and latency vs a bare endpoint, with the stack running."""
    from pipeline.tools.bench.reader import main

    _print(main(seconds, connections, rate, warmup, as_json))


@bench.command("memory")
@click.option(
    "--checkpoints", default="1000000,3000000", show_default=True, help="Events at which to look."
)
# A population every structure saturates by the first checkpoint (1M events: about 50 per
# user-item pair), which is what the growth target is stated for.
@click.option("--users", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--items", type=click.IntRange(min=2), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_memory(checkpoints: str, users: int, items: int, as_json: bool) -> None:
    """Redis memory after N events of a saturated population (growth between checkpoints)."""
    from pipeline.tools.bench.memory import main

    _print(main(_numbers(checkpoints), users, items, as_json))


@bench.command("micro")
@click.option("--events", type=click.IntRange(min=100), default=30_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_micro(events: int, as_json: bool) -> None:
    """In-process paths (decode, learn, Redis writes, batches) vs their naive baselines."""
    from pipeline.tools.bench.micro import main

    _print(main(events, as_json))


@bench.command("plot")
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder with ingest.json, freshness.json, reader.json, memory.json (from --json).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
def bench_plot(results: Path, out: Path) -> None:
    """PNG charts of saved benchmark results."""
    from pipeline.tools.bench.plot import main

    for path in main(results, out):
        click.echo(f"wrote {path}")
