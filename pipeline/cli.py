"""The ``pipeline`` command line: one entry point for every role."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import click

from pipeline.settings import Settings, describe_settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        raise click.ClickException(f"invalid settings: {exc}") from None


def _topics(settings: Settings):  # type: ignore[no-untyped-def]
    """The declared topics, or a clean error naming the file."""
    from pipeline.topics import TopicsFileError, load_topics

    try:
        return load_topics(settings.topics_file, settings.topic_prefix)
    except TopicsFileError as exc:
        raise click.ClickException(str(exc)) from None


def _check_port(host: str, port: int, setting: str) -> None:
    from pipeline.local import port_in_use

    if port_in_use(host, port):
        raise click.ClickException(
            f"port {port} on {host} is already taken; set {setting} to use another port"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Real-time recommendations: Kafka events in, Redis state, HTTP answers out.

    Settings come from PIPELINE_* environment variables (`pipeline settings` lists them).
    """


@cli.command()
def settings() -> None:
    """List every setting: environment variable, default and meaning."""
    for env, default, description in describe_settings():
        click.echo(f"{env}={default}\n    {description}")


@cli.command()
@click.option(
    "--agents",
    default="catalog,trending",
    show_default=True,
    help="Comma-separated agent groups this worker runs (see topics.yaml).",
)
@click.option("--loglevel", default="info", show_default=True, help="Faust log level.")
def worker(agents: str, loglevel: str) -> None:
    """Run a Faust worker for the given agent groups (scale by starting more)."""
    from faust import Worker

    from pipeline.app import create_app, parse_groups

    settings = _settings()
    try:
        groups = parse_groups(agents)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agents") from None
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        _check_port(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            "PIPELINE_WORKER_METRICS_PORT",
        )
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    app = create_app(settings, groups, _topics(settings))
    Worker(app, loglevel=loglevel).execute_from_commandline()


@cli.command()
@click.option("--log-level", default="warning", show_default=True)
def reader(log_level: str) -> None:
    """Serve recommendations over HTTP: trending, for-you, related, rank, segments (see /docs)."""
    import uvicorn

    from pipeline.reader import create_reader_app

    settings = _settings()
    _check_port(settings.reader_host, settings.reader_port, "PIPELINE_READER_PORT")
    uvicorn.run(
        create_reader_app(settings),
        host=settings.reader_host,
        port=settings.reader_port,
        log_level=log_level,
    )


@cli.command()
@click.option("--log-level", default="warning", show_default=True)
def collector(log_level: str) -> None:
    """Accept events over HTTP (POST /v1/events) and publish them to Kafka."""
    import uvicorn

    from pipeline.collector import create_collector_app

    settings = _settings()
    _topics(settings)
    _check_port(settings.collector_host, settings.collector_port, "PIPELINE_COLLECTOR_PORT")
    uvicorn.run(
        create_collector_app(settings),
        host=settings.collector_host,
        port=settings.collector_port,
        log_level=log_level,
    )


@cli.group()
def topics() -> None:
    """Manage the Kafka topics declared in topics.yaml."""


@topics.command("apply")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Topics file (default: PIPELINE_TOPICS_FILE).",
)
def topics_apply(path: Path | None) -> None:
    """Create missing topics (idempotent) and report differences with the broker."""
    from pipeline.topics import apply_topics

    settings = _settings()
    if path is not None:
        settings = settings.model_copy(update={"topics_file": path})
    declared = _topics(settings)
    created, differences = asyncio.run(apply_topics(settings.kafka_bootstrap, declared.specs))
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
    from pipeline.publish import publish_lines

    settings = _settings()
    _topics(settings)
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
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write events as JSONL to this file ('-' for stdout).",
)
@click.option(
    "--catalog-output",
    type=click.Path(dir_okay=False, path_type=Path),
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
@click.option("--users", type=int, default=2000, show_default=True)
@click.option("--items", type=int, default=500, show_default=True)
@click.option("--start", type=int, default=None, help="First timestamp, epoch ms (default: now).")
def generate(
    seed: int,
    count: int | None,
    output: Path | None,
    catalog_output: Path | None,
    kafka: bool,
    rate: float,
    users: int,
    items: int,
    start: int | None,
) -> None:
    """Synthetic traffic: users with tastes, drifting popularity, sessions, impressions."""
    from pipeline.synthetic import SyntheticConfig, SyntheticWorld, write_jsonl

    if not kafka and output is None:
        raise click.UsageError("give --output FILE (or -) and/or --kafka")
    start_ms = start if start is not None else int(time.time() * 1000)
    config = SyntheticConfig(
        seed=seed,
        n_users=users,
        n_items=items,
        start_ms=start_ms,
        events_per_second=rate if rate > 0 else 1000.0,
    )
    world = SyntheticWorld(config)
    if catalog_output is not None:
        write_jsonl(world.catalog(), catalog_output)
    if kafka:
        from pipeline.publish import publish_synthetic

        _topics(_settings())
        sent = asyncio.run(publish_synthetic(_settings(), world, count, rate))
        click.echo(f"published {sent} events", err=True)
        return
    n = count if count is not None else 10_000
    if str(output) == "-":
        written = write_jsonl(world.events(n), sys.stdout.buffer)
    else:
        written = write_jsonl(world.events(n), output)
    click.echo(f"wrote {written} events", err=True)


@cli.command()
@click.option("--no-traffic", is_flag=True, help="Do not start the synthetic traffic generator.")
@click.option(
    "--rate", type=float, default=200.0, show_default=True, help="Synthetic events per second."
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".run/logs"),
    show_default=True,
    help="Where each process writes its log.",
)
def dev(no_traffic: bool, rate: float, log_dir: Path) -> None:
    """Run everything on this machine: broker, Redis, topics, worker, reader, collector, traffic.

    Stops every process it started on Ctrl-C or SIGTERM.
    """
    from pipeline.dev import run_dev

    settings = _settings()
    _topics(settings)
    sys.exit(run_dev(settings, traffic_rate=None if no_traffic else rate, log_dir=log_dir))


def _register_evaluate() -> None:
    from pipeline.evaluate_cli import evaluate_command

    cli.add_command(evaluate_command, "evaluate")


_register_evaluate()


def main() -> None:
    cli(prog_name="pipeline")


if __name__ == "__main__":
    main()
