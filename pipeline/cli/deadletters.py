"""``pipeline deadletters``: list the dead-letter topic, and replay what it holds."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from pipeline.cli.main import cli, load_cli_settings, load_cli_topics

SINCE_HELP = "Only dead letters written since: a duration (15m, 2h, 7d) or an ISO-8601 time."
REASON_HELP = "Only dead letters with a reason containing this text (any case)."


def _since(text: str | None) -> int | None:
    from pipeline.tools.deadletters import parse_since

    if text is None:
        return None
    try:
        return parse_since(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except (LookupError, TimeoutError) as exc:
        raise click.ClickException(str(exc)) from None


@cli.group(invoke_without_command=True)
@click.option("--since", default=None, help=SINCE_HELP)
@click.option("--reason", default=None, help=REASON_HELP)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Show only the latest N matching dead letters.",
)
@click.option("--json", "as_json", is_flag=True, help="Print each dead letter as a JSON line.")
@click.pass_context
def deadletters(
    ctx: click.Context, since: str | None, reason: str | None, limit: int | None, as_json: bool
) -> None:
    """List rejected messages: time, source topic/partition/offset, agent groups, size, reasons.

    Reads the dead-letter topic of topics.yaml from its start (oldest first).
    """
    ctx.obj = {"since": since, "reason": reason}
    if ctx.invoked_subcommand is not None:
        return
    import orjson

    from pipeline.tools.deadletters import read_dead_letters

    settings = load_cli_settings()
    topic = load_cli_topics(settings).dead_letter.name
    reading = _run(read_dead_letters(settings, topic, _since(since), reason, limit))
    for letter in reading.letters:
        click.echo(orjson.dumps(letter.record).decode() if as_json else letter.line())
    summary = f"{len(reading.letters)} dead letters shown of {reading.scanned} in {topic}"
    if reading.unreadable:
        summary += f"; {reading.unreadable} records were not dead letters (not JSON objects)"
    click.echo(summary, err=True)


@deadletters.command("replay")
@click.option("--since", default=None, help=SINCE_HELP)
@click.option("--reason", default=None, help=REASON_HELP)
@click.option(
    "--to-topic",
    default=None,
    help="Publish to this topic instead of each message's source topic.",
)
@click.pass_context
def replay(ctx: click.Context, since: str | None, reason: str | None, to_topic: str | None) -> None:
    """Re-publish the original messages (bytes and key) to the topics they came from.

    Only dead letters that kept their whole message can be replayed (messages up to
    PIPELINE_DEAD_LETTER_MAX_VALUE_BYTES); the others are counted. Fix what made them fail
    first (a limit, the producer), or the agents reject them again.
    """
    from pipeline.tools.deadletters import replay_dead_letters

    given = ctx.obj or {}
    since = since if since is not None else given.get("since")
    reason = reason if reason is not None else given.get("reason")
    settings = load_cli_settings()
    topic = load_cli_topics(settings).dead_letter.name
    _, outcome = _run(replay_dead_letters(settings, topic, _since(since), reason, to_topic))
    for target, count in sorted(outcome.to_topics.items()):
        click.echo(f"replayed {count} to {target}")
    for why, count in sorted(outcome.not_replayable.items()):
        click.echo(f"could not replay {count}: {why}", err=True)
    click.echo(
        f"replayed {outcome.sent} of {outcome.matched} matching dead letters; "
        f"{outcome.skipped} could not be replayed"
    )
