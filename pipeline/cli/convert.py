"""``pipeline convert``: a CSV table of interactions to a JSONL event log."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from pipeline.cli.data import INPUT_FILE, OUTPUT_FILE, report_invalid
from pipeline.cli.main import cli


@cli.command("convert")
@click.argument("path", type=INPUT_FILE)
@click.option("--output", type=OUTPUT_FILE, required=True, help="The JSONL event log to write.")
@click.option("--user", default="user_id", show_default=True, help="The user id column.")
@click.option("--item", default="item_id", show_default=True, help="The item id column.")
@click.option(
    "--time", "time_column", default="timestamp", show_default=True, help="The time column."
)
@click.option(
    "--time-unit",
    type=click.Choice(["ms", "s", "iso"]),
    default="ms",
    show_default=True,
    help="Epoch milliseconds, epoch seconds, or ISO-8601 text with a UTC offset.",
)
@click.option("--type", "event_type", default=None, help="The event type of every row (e.g. rate).")
@click.option("--type-column", default=None, help="The column that names each row's type.")
@click.option(
    "--type-map",
    multiple=True,
    help="NAME=EVENT_TYPE: a type column's name for an event type (repeatable), e.g. "
    "view=click, addtocart=basket, transaction=buy.",
)
@click.option("--value", "value_column", default=None, help="The value column (a rating 1-5, ...).")
@click.option(
    "--rating-scale",
    type=(float, float),
    default=None,
    help="LOWEST HIGHEST of the table's ratings, mapped linearly onto 1-5 (e.g. 0.5 5).",
)
@click.option("--delimiter", default=",", show_default=True, help="The field separator.")
@click.option("--id-prefix", default="row-", show_default=True, help="Event ids: prefix + line.")
def convert(
    path: Path,
    output: Path,
    user: str,
    item: str,
    time_column: str,
    time_unit: str,
    event_type: str | None,
    type_column: str | None,
    type_map: tuple[str, ...],
    value_column: str | None,
    rating_scale: tuple[float, float] | None,
    delimiter: str,
    id_prefix: str,
) -> None:
    """A CSV table with a header row (ratings, a shop's events) to a JSONL event log.

    For example MovieLens's ratings.csv: `pipeline convert ratings.csv --output ml.jsonl
    --user userId --item movieId --time-unit s --type rate --value rating`. Invalid rows
    are reported with their line and reason and not written; the exit code is 1 when any
    row was invalid.
    """
    import csv

    from pipeline.tools.convert import CsvMapping, convert_rows, parse_type_map
    from pipeline.tools.synthetic import write_jsonl

    try:
        mapping = CsvMapping(
            user=user,
            item=item,
            time=time_column,
            time_unit=time_unit,
            event_type=event_type,
            type_column=type_column,
            type_map=parse_type_map(type_map),
            value=value_column,
            id_prefix=id_prefix,
            rating_scale=rating_scale,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    invalid: list[tuple[int, str]] = []
    with path.open(newline="", encoding="utf-8") as table:
        reader = csv.DictReader(table, delimiter=delimiter)
        missing = [c for c in mapping.columns() if c not in (reader.fieldnames or [])]
        if missing:
            raise click.UsageError(f"{path} has no column {', '.join(map(repr, missing))}")

        def events() -> Iterator[dict[str, Any]]:
            for line, converted in convert_rows(reader, mapping):
                if isinstance(converted, str):
                    invalid.append((line, converted))
                else:
                    yield converted

        written = write_jsonl(events(), output)
    report_invalid(invalid, path)
    click.echo(f"wrote {written} events", err=True)
    if invalid:
        sys.exit(1)
