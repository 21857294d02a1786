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
@click.option(
    "--delimiter", default=",", show_default=True, help="The field separator (tab: '\\t')."
)
@click.option(
    "--id-prefix",
    default="row-",
    show_default=True,
    help="Event ids: prefix + line. Give each table its own when publishing several: "
    "events with the same id are one event.",
)
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
    row was invalid. A table that cannot be read (not UTF-8, malformed) writes nothing.
    """
    import csv
    import os

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
    delimiter = "\t" if delimiter in ("\\t", "tab") else delimiter
    if len(delimiter) != 1:
        raise click.UsageError(f"the delimiter is one character, got {delimiter!r}")
    if output.exists() and output.resolve() == path.resolve():
        raise click.UsageError("the output would overwrite the table: give another file")
    invalid: list[tuple[int, str]] = []
    partial = output.with_name(output.name + ".partial")
    reader: csv.DictReader[str] | None = None
    try:
        with path.open(newline="", encoding="utf-8-sig") as table:  # a BOM is no column name
            reader = csv.DictReader(table, delimiter=delimiter)
            header = list(reader.fieldnames or [])
            doubled = sorted({name for name in header if header.count(name) > 1})
            if doubled:
                raise click.UsageError(f"{path} names a column twice: {', '.join(doubled)}")
            missing = [c for c in mapping.columns() if c not in header]
            if missing:
                raise click.UsageError(f"{path} has no column {', '.join(map(repr, missing))}")

            def events() -> Iterator[dict[str, Any]]:
                for line, converted in convert_rows(reader, mapping):
                    if isinstance(converted, str):
                        invalid.append((line, converted))
                    else:
                        yield converted

            written = write_jsonl(events(), partial)
    except (UnicodeDecodeError, csv.Error) as error:
        partial.unlink(missing_ok=True)
        where = f" (after line {reader.line_num})" if reader is not None else ""
        raise click.ClickException(f"{path} cannot be read{where}: {error}") from None
    os.replace(partial, output)
    report_invalid(invalid, path)
    click.echo(f"wrote {written} events", err=True)
    if invalid:
        sys.exit(1)
