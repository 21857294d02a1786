"""``pipeline evaluate``: replay a JSONL event log through the engine and report the figures.

The engine is configured by ``engine_config(load_settings())``, exactly as the personal agent
is, so the figures describe what production runs. Reading follows the error-path rule: a
line that is not a valid event is counted, reported on stderr and skipped, never fatal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import click
import orjson

from pipeline.events import Event, InvalidEvent, event_from_dict

RECOMMENDERS = ("personal", "popularity", "trending", "related")
# The recommenders whose running HR is recorded as a curve by ``evaluate``.
CURVES = ("personal", "popularity", "trending")
# Invalid lines listed one by one on stderr; the rest are only counted.
MAX_REPORTED = 20


def read_events(lines: Iterable[bytes]) -> tuple[list[Event], list[tuple[int, str]]]:
    """Decode JSONL lines: the valid events and (line number, reason) of every invalid line.

    Blank lines are not events and are skipped silently. Never raises on bad input.
    """
    events: list[Event] = []
    invalid: list[tuple[int, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(event_from_dict(orjson.loads(line)))
        except InvalidEvent as exc:
            invalid.append((number, str(exc)))
        except orjson.JSONDecodeError as exc:
            invalid.append((number, f"not valid JSON: {exc}"))
        # event_from_dict may fail outside its contract on odd JSON types (e.g. a list as
        # "type"); the log reader must still survive it.
        except (TypeError, ValueError, OverflowError) as exc:
            invalid.append((number, f"{type(exc).__name__}: {exc}"))
    return events, invalid


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 0 else "n/a"


def format_table(figures: dict[str, Any]) -> str:
    """The figures as a plain-text table with throughput and the lift over popularity."""
    k = figures["k"]
    headers = ("recommender", f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", "coverage", "cases")
    rows = [headers]
    for name in RECOMMENDERS:
        scores = figures[name]
        rows.append(
            (
                name,
                f"{scores[f'hr@{k}']:.4f}",
                f"{scores[f'ndcg@{k}']:.4f}",
                f"{scores[f'mrr@{k}']:.4f}",
                f"{scores['coverage']:.4f}",
                str(scores["cases"]),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(headers))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(" | ".join(cells))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    popularity = figures["popularity"][f"hr@{k}"]
    lines += [
        "",
        f"events: {figures['events']} in {figures['seconds']:.2f} s "
        f"({figures['events_per_second']:,.0f} events/s); catalog: {figures['catalog_size']} items",
        f"personal HR@{k} / popularity HR@{k}: "
        f"{_ratio(figures['personal'][f'hr@{k}'], popularity)}",
        f"related HR@{k} / popularity HR@{k}: {_ratio(figures['related'][f'hr@{k}'], popularity)}",
    ]
    return "\n".join(lines)


def plot_curves(figures: dict[str, Any], path: Path) -> None:
    """Write the running HR@k of personal, popularity and trending over the log as a PNG."""
    # Imported here: matplotlib is a dev extra and slow to import; Agg needs no display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, every = figures["k"], figures["curve_every"]
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for name in CURVES:
        curve = figures["curves"][name]
        axes.plot([every * (i + 1) for i in range(len(curve))], curve, label=name)
    axes.set_xlabel("events replayed")
    axes.set_ylabel(f"HR@{k} (cumulative)")
    axes.set_title(f"Prequential HR@{k} over {figures['events']:,} events")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def _report_invalid(invalid: list[tuple[int, str]], path: Path) -> None:
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


@click.command("evaluate")
@click.option(
    "--events",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
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
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write HR@k over the log (personal, popularity, trending) to this PNG.",
)
def evaluate_command(
    path: Path, k: int, as_json: bool, curves: bool, curve_every: int, plot: Path | None
) -> None:
    """Prequential evaluation: replay an event log, predicting before learning each event.

    Compares the personal recommender (the engine the agents run, configured from PIPELINE_*
    settings) and related items with popularity and trending baselines. Invalid lines are
    reported on stderr and skipped.
    """
    from tqdm import tqdm

    from pipeline.engine import engine_config
    from pipeline.evaluate import evaluate
    from pipeline.settings import load_settings

    try:
        config = engine_config(load_settings())
    except Exception as exc:  # pydantic's ValidationError names the bad variable
        raise click.ClickException(f"invalid settings: {exc}") from None
    with path.open("rb") as handle:
        events, invalid = read_events(handle)
    _report_invalid(invalid, path)
    if not events:
        raise click.ClickException(f"no valid events in {path}")
    disable = as_json or not _stderr_is_tty(sys.stderr)
    with tqdm(
        total=len(events), unit="event", unit_scale=True, file=sys.stderr, disable=disable
    ) as bar:
        figures = evaluate(events, k, config, progress=bar.update, curve_every=curve_every)
    if plot is not None:
        plot_curves(figures, plot)
        click.echo(f"wrote {plot}", err=True)
    if as_json:
        out = {key: value for key, value in figures.items() if curves or key != "curves"}
        out["invalid_lines"] = len(invalid)
        click.echo(orjson.dumps(out).decode())
    else:
        click.echo(format_table(figures))
