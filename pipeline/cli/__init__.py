"""The ``pipeline`` command line: one entry point for every role (``pipeline --help``)."""

from pipeline.cli import (  # noqa: F401 - registers the commands
    bench,
    convert,
    data,
    deadletters,
    fences,
    services,
    status,
)
from pipeline.cli.main import cli


def main() -> None:
    cli(prog_name="pipeline")


__all__ = ["cli", "main"]
