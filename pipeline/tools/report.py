"""Reading an event log and reporting an evaluation: the table, the JSON, the plot.

Reading follows the error-path rule: a line that is not a valid event is counted, reported
and skipped, never fatal. ``pipeline evaluate`` (``pipeline.cli``) puts these together.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from pipeline.core.events import Event, event_from_dict
from pipeline.core.ids import InvalidInput
from pipeline.tools.evaluate import RECOMMENDERS, WITHOUT_CONTENT

# The curves plotted: the blend, its components and the popularity baselines.
CURVES = ("personal", "factors", "cooccurrence", "popularity", "trending")


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
        except InvalidInput as exc:
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


def _reported(figures: dict[str, Any]) -> tuple[str, ...]:
    """The recommenders in the figures, in report order."""
    return RECOMMENDERS + ((WITHOUT_CONTENT,) if WITHOUT_CONTENT in figures else ())


def format_table(figures: dict[str, Any]) -> str:
    """The figures as a plain-text table with throughput and the lift over popularity."""
    k = figures["k"]
    headers = ("recommender", f"HR@{k}", f"NDCG@{k}", f"MRR@{k}", "coverage", "cases")
    rows = [headers]
    for name in _reported(figures):
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
    best_part = max(figures[name][f"hr@{k}"] for name in ("factors", "cooccurrence"))
    lines += [
        "",
        f"events: {figures['events']} in {figures['seconds']:.2f} s "
        f"({figures['events_per_second']:,.0f} events/s); items: {figures['catalog_size']} "
        "(named by the log or served; the coverage denominator)",
        f"personal HR@{k} / popularity HR@{k}: "
        f"{_ratio(figures['personal'][f'hr@{k}'], popularity)}",
        f"related HR@{k} / popularity HR@{k}: {_ratio(figures['related'][f'hr@{k}'], popularity)}",
        f"personal HR@{k} / its best component alone: "
        f"{_ratio(figures['personal'][f'hr@{k}'], best_part)}",
    ]
    lines += format_cold_start(figures)
    return "\n".join(lines)


def format_cold_start(figures: dict[str, Any]) -> list[str]:
    """One line per cold-start group: its cases and each recommender's HR@k on them."""
    k, cold = figures["k"], figures.get("cold_start")
    if not cold:
        return []
    age_h = cold["new_item_age_s"] / 3600
    titles = {
        "new_items": f"new items (created or first seen < {age_h:g} h before)",
        "new_users": f"new users (< {cold['new_user_events']} earlier events)",
        "cold_items": f"cold items (< {cold['cold_item_events']} earlier events named them)",
    }
    lines = ["", f"cold start, HR@{k}:"]
    for group, title in titles.items():
        per = cold[group]
        cases = per["personal"]["cases"]
        parts = ", ".join(f"{name} {per[name][f'hr@{k}']:.4f}" for name in _reported(figures))
        lines.append(f"  {title}: {cases} cases; {parts}")
    return lines


def read_items(lines: Iterable[bytes]) -> tuple[list[Any], int]:
    """The item records of a catalog JSONL file (:class:`pipeline.core.items.Item`), and
    how many lines were not valid item records (skipped, never fatal)."""
    from pipeline.core.items import item_from_dict

    items: list[Any] = []
    invalid = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            item = item_from_dict(orjson.loads(line))
        except (InvalidInput, orjson.JSONDecodeError, TypeError, ValueError, OverflowError):
            invalid += 1
            continue
        items.append(item)
    return items, invalid


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
