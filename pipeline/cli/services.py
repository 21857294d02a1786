"""Commands that run a role: worker, reader, collector, and the whole stack (dev)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cli.main import check_port, cli, load_cli_settings, load_cli_topics
from pipeline.cli.runtime import tune_garbage_collection
from pipeline.core.settings import Settings

# uvicorn's loggers: given the process's format instead of uvicorn's own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


@cli.command()
@click.option(
    "--agents",
    default="catalog,trending",
    show_default=True,
    help="Comma-separated agent groups this worker runs (see topics.yaml).",
)
@click.option("--loglevel", default="info", show_default=True, help="Faust log level.")
def worker(agents: str, loglevel: str) -> None:
    """Run a Faust worker for the given agent groups (scale by starting more).

    SIGTERM stops it gracefully (docs/operations.md, "Stopping a worker")."""
    from pipeline.features.registry import parse_groups
    from pipeline.stream.app import create_app
    from pipeline.stream.worker import Worker

    settings = load_cli_settings()
    if settings.worker_uvloop:
        import mode.loop

        mode.loop.use("uvloop")
    try:
        groups = parse_groups(agents)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--agents") from None
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        check_port(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            "PIPELINE_WORKER_METRICS_PORT",
        )
        start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
    app = create_app(settings, groups, load_cli_topics(settings))
    tune_garbage_collection()
    Worker(
        app,
        loglevel=loglevel,
        stop_timeout_s=settings.worker_stop_timeout_s,
        logging_config=process_logging(settings, "worker", loglevel),
    ).execute_from_commandline()


def process_logging(
    settings: Settings, service: str, level: str, loggers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The process's logging: ``log_format`` lines on stderr, every secret masked."""
    from pipeline.core.logs import logging_config
    from pipeline.core.settings import secret_values

    return logging_config(settings.log_format, level, service, secret_values(settings), loggers)


def serve(app: Any, host: str, port: int, setting: str, log_level: str, settings: Settings) -> None:
    """Run an ASGI app with uvicorn after checking that its port is free."""
    import uvicorn

    check_port(host, port, setting)
    service = setting.removeprefix("PIPELINE_").removesuffix("_PORT").lower()
    config = process_logging(settings, service, log_level, UVICORN_LOGGERS)
    uvicorn.run(app, host=host, port=port, log_level=log_level, log_config=config)


@cli.command()
@click.option("--log-level", default="warning", show_default=True)
def reader(log_level: str) -> None:
    """Serve recommendations over HTTP: scenarios, trending, for-you, related, rank, segments
    (see /docs)."""
    from pipeline.api.reader import create_reader_app
    from pipeline.api.security import ApiKeyConfigError
    from pipeline.features.scenarios.spec import ScenarioFileError

    settings = load_cli_settings()
    try:
        app = create_reader_app(settings)
    except (ApiKeyConfigError, ScenarioFileError) as exc:
        raise click.ClickException(str(exc)) from None
    serve(
        app, settings.reader_host, settings.reader_port, "PIPELINE_READER_PORT", log_level, settings
    )


@cli.command()
@click.option("--log-level", default="warning", show_default=True)
def collector(log_level: str) -> None:
    """Accept events over HTTP (POST /v1/events) and publish them to Kafka."""
    from pipeline.api.collector import create_collector_app
    from pipeline.api.security import ApiKeyConfigError

    settings = load_cli_settings()
    load_cli_topics(settings)
    try:
        app = create_collector_app(settings)
    except ApiKeyConfigError as exc:
        raise click.ClickException(str(exc)) from None
    host, port = settings.collector_host, settings.collector_port
    serve(app, host, port, "PIPELINE_COLLECTOR_PORT", log_level, settings)


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
    from pipeline.tools.dev import run_dev

    settings = load_cli_settings()
    load_cli_topics(settings)
    sys.exit(run_dev(settings, traffic_rate=None if no_traffic else rate, log_dir=log_dir))
