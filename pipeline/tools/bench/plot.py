"""``pipeline bench plot``: PNG charts of saved ``--json`` results (for docs/performance.md).

Reads ``ingest.json``, ``freshness.json``, ``reader.json`` and ``memory.json`` from a folder
(whichever exist) and writes one chart per file next to the others in ``out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def _figure() -> Any:
    # Imported here: matplotlib is a dev extra and slow to import; Agg needs no display.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(
    axes: Any,
    labels: list[str],
    series: dict[str, list[float]],
    ylabel: str,
    rotation: float = 20,
) -> None:
    width = 0.8 / max(len(series), 1)
    for number, (name, values) in enumerate(series.items()):
        positions = [i + (number - (len(series) - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, values, width, label=name)
    axes.set_xticks(range(len(labels)))
    if rotation:
        axes.set_xticklabels(labels, rotation=rotation, ha="right")
    else:
        axes.set_xticklabels(labels, fontsize=8)
    axes.set_ylabel(ylabel)
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend()


def ingest_labels(rows: list[dict[str, Any]]) -> list[str]:
    """The bar labels of ingest rows: run and envelope, and a profile other than the
    default one (``bench ingest --profile``)."""
    return [
        f"{row['run']}\n{row['envelope']}/msg"
        + ("" if row.get("profile", "default") == "default" else f"\n{row['profile']}")
        for row in rows
    ]


def plot_ingest(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _figure()
    # Labels of two or three lines, upright, each below its bars: room for every row.
    figure, axes = plt.subplots(figsize=(max(9.0, 0.8 * len(rows)), 4.5))
    labels = ingest_labels(rows)
    series = {
        "worker, events/s": [row["events_per_s"] for row in rows],
        "bare Faust agent, messages/s": [row["bare_faust_msgs_per_s"] for row in rows],
    }
    _bars(axes, labels, series, "per second", rotation=0)
    axes.set_title("Ingest: a worker against a bare Faust agent on the same messages")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def plot_freshness(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _figure()
    figure, axes = plt.subplots(figsize=(8, 4.5))
    labels = [f"{row['rate']:,.0f} events/s" for row in rows]
    series = {
        "p50": [row["p50_ms"] for row in rows],
        "p95": [row["p95_ms"] for row in rows],
        "p99": [row["p99_ms"] for row in rows],
        "Kafka alone, p99": [row["kafka_p99_ms"] for row in rows],
    }
    _bars(axes, labels, series, "milliseconds")
    axes.set_title("Freshness: event produced to the reader reflecting it")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def plot_reader(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _figure()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    labels = [row["endpoint"] for row in rows]
    _bars(left, labels, {"requests/s": [row["requests_per_s"] for row in rows]}, "requests/s")
    left.set_title("Reader throughput (saturated)")
    series = {
        "p50, 2 connections": [row["moderate_p50_ms"] for row in rows],
        "p99, 2 connections": [row["moderate_p99_ms"] for row in rows],
    }
    _bars(right, labels, series, "milliseconds")
    right.set_title("Reader latency (moderate load)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


def plot_memory(rows: list[dict[str, Any]], path: Path) -> None:
    plt = _figure()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot([row["events"] for row in rows], [row["used_memory_mb"] for row in rows], "o-")
    axes.set_xlabel("events applied")
    axes.set_ylabel("Redis used memory, MB")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.set_title("Redis memory on a saturated population")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    plt.close(figure)


PLOTS = {
    "ingest": plot_ingest,
    "freshness": plot_freshness,
    "reader": plot_reader,
    "memory": plot_memory,
}


def main(results: Path, out: Path) -> list[Path]:
    """Charts of every result file found; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, plot in PLOTS.items():
        source = results / f"{name}.json"
        if source.exists():
            target = out / f"bench-{name}.png"
            plot(orjson.loads(source.read_bytes()), target)
            written.append(target)
    return written
