"""``pipeline status``: applied offsets and lag per agent group and partition, Redis memory
and keys per family, dead letters of the last hour."""

from __future__ import annotations

import asyncio

import click
import orjson

from pipeline.cli.main import cli, load_cli_settings, load_cli_topics


@cli.command()
@click.option(
    "--agents",
    default=None,
    help="Comma-separated agent groups to show (default: every group).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table.")
@click.option(
    "--scan-cap",
    type=click.IntRange(min=1),
    default=200_000,
    show_default=True,
    help="Most Redis keys to count (counts are then a lower bound).",
)
def status(agents: str | None, as_json: bool, scan_cap: int) -> None:
    """Show how far every agent group is (applied offset, end offset, lag per partition),
    Redis's used memory and keys per key family, and dead letters of the last hour."""
    from pipeline.features.registry import parse_groups
    from pipeline.tools.status import collect_status, render

    settings = load_cli_settings()
    topics = load_cli_topics(settings)
    try:
        groups = parse_groups(agents) if agents else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agents") from None
    found = asyncio.run(collect_status(settings, topics, groups, scan_cap))
    if as_json:
        click.echo(orjson.dumps(found.to_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(found))
    if found.errors:
        raise SystemExit(1)
