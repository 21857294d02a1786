"""``pipeline fences reset``: start agent groups afresh on a topic whose offsets restarted."""

from __future__ import annotations

import asyncio

import click

from pipeline.cli.main import cli, load_cli_settings, load_cli_topics


@cli.group()
def fences() -> None:
    """Offset fences: what each agent group has applied (pipeline status shows them)."""


@fences.command("reset")
@click.option(
    "--agents",
    required=True,
    help="The agent groups exactly as their workers run them (--agents of pipeline worker).",
)
@click.option("--topic", required=True, help="The topic, as topics.yaml names it (prefixed).")
@click.option(
    "--partition",
    "partitions",
    type=click.IntRange(min=0),
    multiple=True,
    help="Only these partitions (repeatable; default: every fenced one).",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def fences_reset(agents: str, topic: str, partitions: tuple[int, ...], yes: bool) -> None:
    """Forget what the groups applied on TOPIC: for a topic that was re-created or a broker
    that lost its data (the worker logs "the fence of ... is at offset N but the partition
    ends at M"). Stop the workers of these groups first, then start them with a new
    consumer group (PIPELINE_APP_ID) so that they read TOPIC from its first offset; on the
    other topics their fences skip what they applied before."""
    from pipeline.features.registry import parse_groups
    from pipeline.tools.fences import reset_fences

    settings = load_cli_settings()
    known = {spec.name for spec in load_cli_topics(settings).specs}
    if topic not in known:
        raise click.BadParameter(f"{topic!r} is not in topics.yaml", param_hint="--topic")
    try:
        groups = parse_groups(agents)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agents") from None
    if not yes:
        click.confirm(
            f"Reset the fences of {', '.join(groups)} on {topic}? Their workers must be stopped",
            abort=True,
        )
    deleted = asyncio.run(reset_fences(settings, groups, topic, list(partitions) or None))
    for group, found in deleted.items():
        click.echo(f"{group}: {len(found)} fences deleted on {topic} {found}")
    click.echo(
        f"Now start the workers with a new PIPELINE_APP_ID (was {settings.app_id!r}): "
        f"they read {topic} from its first offset."
    )
