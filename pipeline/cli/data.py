"""Commands that move data: topics, produce, generate, evaluate."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import IO, Any

import click

from pipeline.cli.main import cli, load_cli_settings, load_cli_topics
from pipeline.cli.runtime import tune_garbage_collection

# Invalid lines of an evaluated log listed one by one on stderr; the rest are only counted.
MAX_REPORTED = 20
# The synthetic generator's profiles (``pipeline.tools.synthetic.config.PROFILES``, which a
# test holds these to), named here so that the CLI starts without importing the generator.
PROFILE_NAMES = ["default", "dense", "fresh", "listings", "ratings"]
# A file the command reads, and one it writes.
INPUT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
OUTPUT_FILE = click.Path(dir_okay=False, path_type=Path)


@cli.group()
def topics() -> None:
    """Manage the Kafka topics declared in topics.yaml."""


@topics.command("apply")
@click.option(
    "--file",
    "path",
    type=INPUT_FILE,
    default=None,
    help="Topics file (default: PIPELINE_TOPICS_FILE).",
)
def topics_apply(path: Path | None) -> None:
    """Create missing topics (idempotent) and report differences with the broker."""
    from pipeline.stream.kafka import apply_topics, kafka_security

    settings = load_cli_settings()
    if path is not None:
        settings = settings.model_copy(update={"topics_file": path})
    declared = load_cli_topics(settings)
    created, differences = asyncio.run(
        apply_topics(settings.kafka_bootstrap, declared.specs, kafka_security(settings))
    )
    for name in created:
        click.echo(f"created {name}")
    for difference in differences:
        click.echo(f"differs: {difference}", err=True)
    if not created and not differences:
        click.echo(f"all {len(declared.specs)} topics present and as declared")


@cli.command()
@click.argument("path", type=click.File("rb"))
@click.option("--catalog", is_flag=True, help="The file holds item records for the catalog topic.")
def produce(path, catalog: bool) -> None:  # type: ignore[no-untyped-def]
    """Publish a JSONL file of events (or, with --catalog, items) to their topics.

    Invalid lines are reported with their line number and not sent; the exit code is 1
    when any line was invalid.
    """
    from pipeline.tools.publish import publish_lines

    settings = load_cli_settings()
    load_cli_topics(settings)
    sent, errors = asyncio.run(publish_lines(settings, path, catalog=catalog))
    for line_number, reason in errors[:50]:
        click.echo(f"line {line_number}: {reason}", err=True)
    click.echo(f"published {sent} records; {len(errors)} invalid lines")
    if errors:
        sys.exit(1)


@cli.command()
@click.option("--seed", default=42, show_default=True, help="Random seed: same seed, same traffic.")
@click.option(
    "--events",
    "count",
    type=int,
    default=None,
    help="How many events (default: endless with --kafka, 10000 otherwise).",
)
@click.option(
    "--output",
    type=OUTPUT_FILE,
    default=None,
    help="Write events as JSONL to this file ('-' for stdout).",
)
@click.option(
    "--catalog-output",
    type=OUTPUT_FILE,
    default=None,
    help="Write the item catalog as JSONL to this file.",
)
@click.option("--kafka", is_flag=True, help="Publish the catalog and events to Kafka.")
@click.option(
    "--rate",
    type=float,
    default=100.0,
    show_default=True,
    help="Events per second: simulated spacing of timestamps, and with --kafka the "
    "real publishing rate (0 publishes as fast as possible).",
)
@click.option(
    "--profile",
    type=click.Choice(PROFILE_NAMES),
    default="default",
    show_default=True,
    help="dense: hundreds of events per user, 3,000 items with a long tail, ratings, drifting "
    "tastes, items released during the log. fresh: a steady stream of new items, each "
    "popular at its release and fading (news, drops). listings: 15,000 items nearly all "
    "released during the log, each fading within about 2,000 events (classifieds, jobs). "
    "ratings: ratings alone in bursts with whole-second timestamps (MovieLens-like).",
)
@click.option("--users", type=int, default=None, help="Users (default: the profile's).")
@click.option("--items", type=int, default=None, help="Items (default: the profile's).")
@click.option(
    "--start",
    type=int,
    default=None,
    help="First timestamp, epoch ms, any era from 1973 on (default: now).",
)
def generate(
    seed: int,
    count: int | None,
    output: Path | None,
    catalog_output: Path | None,
    kafka: bool,
    rate: float,
    profile: str,
    users: int | None,
    items: int | None,
    start: int | None,
) -> None:
    """Synthetic traffic: users with tastes, drifting popularity, sessions, impressions."""
    from pipeline.tools.synthetic import SyntheticWorld, write_jsonl
    from pipeline.tools.synthetic import profile as synthetic_profile

    if not kafka and output is None:
        raise click.UsageError("give --output FILE (or -) and/or --kafka")
    sizes = {"n_users": users, "n_items": items}
    config = synthetic_profile(
        profile,
        seed=seed,
        start_ms=start if start is not None else int(time.time() * 1000),
        events_per_second=rate if rate > 0 else 1000.0,
        **{name: value for name, value in sizes.items() if value is not None},
    )
    world = SyntheticWorld(config)
    if catalog_output is not None:
        write_jsonl(world.catalog(), catalog_output)
    if kafka:
        from pipeline.tools.publish import publish_synthetic

        load_cli_topics(load_cli_settings())
        sent = asyncio.run(publish_synthetic(load_cli_settings(), world, count, rate))
        click.echo(f"published {sent} events", err=True)
        return
    n = count if count is not None else 10_000
    assert output is not None  # checked above: --output or --kafka
    if str(output) == "-":
        written = write_jsonl(world.events(n), sys.stdout.buffer)
    else:
        written = write_jsonl(world.events(n), output)
    click.echo(f"wrote {written} events", err=True)


def report_invalid(invalid: list[tuple[int, str]], path: Path) -> None:
    if not invalid:
        return
    for number, reason in invalid[:MAX_REPORTED]:
        click.echo(f"{path}:{number}: {reason}", err=True)
    if len(invalid) > MAX_REPORTED:
        click.echo(f"... and {len(invalid) - MAX_REPORTED} more", err=True)
    click.echo(f"skipped {len(invalid)} invalid lines", err=True)


def _stderr_is_tty(stream: IO[Any]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@cli.command("evaluate")
@click.option(
    "--events",
    "path",
    type=INPUT_FILE,
    required=True,
    help="JSONL event log to replay (e.g. written by `pipeline generate --output`).",
)
@click.option("--k", type=click.IntRange(min=1), default=10, show_default=True, help="List length.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--curves", is_flag=True, help="With --json, include the HR curves.")
@click.option(
    "--curve-every",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Events between two points of the HR curves.",
)
@click.option(
    "--plot",
    type=OUTPUT_FILE,
    default=None,
    help="Write HR@k over the log (personal, popularity, trending) to this PNG.",
)
@click.option(
    "--catalog",
    type=INPUT_FILE,
    default=None,
    help="JSONL item records; their created_at marks new items (else first sight in the log), "
    "their text feeds the content taste when PIPELINE_CONTENT_TASTE_WEIGHT > 0 (then "
    "personal_without_content is reported too).",
)
@click.option(
    "--new-item-age",
    type=click.FloatRange(min=0),
    default=86_400,
    show_default=True,
    help="Seconds after creation (or first sight) during which an item counts as new.",
)
@click.option(
    "--new-user-events",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Users with fewer earlier events than this count as new.",
)
@click.option(
    "--cold-item-events",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Items that fewer earlier events named than this count as cold.",
)
def evaluate_command(
    path: Path,
    k: int,
    as_json: bool,
    curves: bool,
    curve_every: int,
    plot: Path | None,
    catalog: Path | None,
    new_item_age: float,
    new_user_events: int,
    cold_item_events: int,
) -> None:
    """Prequential evaluation: replay an event log, predicting before learning each event.

    Compares the personal recommender (the engine the agents run, configured from PIPELINE_*
    settings) and related items with popularity and trending baselines. Invalid lines are
    reported on stderr and skipped. Cold-start cases (new items, new users) are also
    reported apart.
    """
    import orjson
    from tqdm import tqdm

    from pipeline.features.content.config import content_config
    from pipeline.features.personal.config import personal_config
    from pipeline.tools.evaluate import ColdStart, evaluate
    from pipeline.tools.report import format_table, plot_curves, read_events, read_items

    items: list = []
    if catalog is not None:
        with catalog.open("rb") as handle:
            items, bad_items = read_items(handle)
        if bad_items:
            click.echo(f"{catalog}: {bad_items} invalid item lines skipped", err=True)
    created = {item.item_id: item.created_at_ms for item in items if item.created_at_ms is not None}
    cold = ColdStart(
        int(new_item_age * 1000), new_user_events, created, cold_item_events=cold_item_events
    )

    settings = load_cli_settings()
    config = personal_config(settings)
    tune_garbage_collection()
    with path.open("rb") as handle:
        events, invalid = read_events(handle)
    report_invalid(invalid, path)
    if not events:
        raise click.ClickException(f"no valid events in {path}")
    disable = as_json or not _stderr_is_tty(sys.stderr)
    with tqdm(
        total=len(events), unit="event", unit_scale=True, file=sys.stderr, disable=disable
    ) as bar:
        figures = evaluate(
            events,
            k,
            config,
            progress=bar.update,
            curve_every=curve_every,
            cold=cold,
            catalog=items,
            content=content_config(settings),
        )
    if plot is not None:
        plot_curves(figures, plot)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        out = {key: value for key, value in figures.items() if curves or key != "curves"}
        out["invalid_lines"] = len(invalid)
        click.echo(orjson.dumps(out).decode())
    else:
        click.echo(format_table(figures))
