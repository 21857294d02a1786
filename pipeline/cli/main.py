"""The ``pipeline`` command group and what every command shares: settings, topics, ports."""

from __future__ import annotations

import click

from pipeline.core.settings import Settings, describe_settings, load_settings
from pipeline.core.topics import Topics


def load_cli_settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        raise click.ClickException(f"invalid settings: {exc}") from None


def load_cli_topics(settings: Settings) -> Topics:
    """The declared topics, or a clean error naming the file."""
    from pipeline.core.topics import TopicsFileError
    from pipeline.features.registry import declared_topics

    try:
        return declared_topics(settings)
    except TopicsFileError as exc:
        raise click.ClickException(str(exc)) from None


def check_port(host: str, port: int, setting: str) -> None:
    """A clean error naming the setting when ``host:port`` is taken."""
    from pipeline.tools.local import port_in_use

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
