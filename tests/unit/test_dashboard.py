"""deploy/grafana/pipeline.json parses, and every metric its queries name is one the code
exports (a renamed metric would otherwise leave an empty panel nobody notices)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pipeline.json"
# Metric families the project's code creates; the first argument is the name.
DECLARATION = re.compile(
    r'\b(Counter|Histogram|Gauge|Summary|GaugeMetricFamily|CounterMetricFamily)\(\s*f?"([^"]+)"'
)
QUERIED = re.compile(r"\b((?:pipeline|reader|collector|process)_[a-z0-9_]+)\b")


def exported_names() -> set[str]:
    """Every sample name the code's metrics expose, as Prometheus sees them."""
    sources = {path: path.read_text(encoding="utf-8") for path in (ROOT / "pipeline").rglob("*.py")}
    # The HTTP metrics are named f"{service}_..." for each service that installs them.
    services = {
        name
        for text in sources.values()
        for name in re.findall(r'install_metrics\(.*?"(\w+)"\)', text)
    }
    names: set[str] = set()
    for text in sources.values():
        for kind, name in DECLARATION.findall(text):
            expanded = [name.replace("{service}", s) for s in services] if "{" in name else [name]
            for full in expanded:
                if kind in ("Counter", "CounterMetricFamily"):
                    base = full.removesuffix("_total")
                    names |= {base + "_total", base + "_created"}
                elif kind in ("Histogram", "Summary"):
                    names |= {full, full + "_bucket", full + "_sum", full + "_count"}
                else:
                    names.add(full)
    # Process metrics (memory, CPU) of every service: prometheus_client's own collector.
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    names |= {sample.name for family in registry.collect() for sample in family.samples}
    return names


def queries(node: Any) -> list[str]:
    """Every PromQL text in the dashboard: panel targets and template variables."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found += queries(value)
    elif isinstance(node, list):
        for item in node:
            found += queries(item)
    return found


def test_dashboard_parses_with_panels_and_queries() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels and all(p.get("targets") for p in panels)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_queried_metric_is_exported() -> None:
    exported = exported_names()
    # The worker's and both services' metrics are all found (the scan itself works).
    assert {
        "pipeline_messages_total",
        "reader_requests_total",
        "collector_events_total",
    } <= exported
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = {name for text in queries(dashboard) for name in QUERIED.findall(text)}
    assert used, "the dashboard queries no metric"
    missing = sorted(used - exported)
    assert not missing, f"the dashboard queries metrics no code exports: {missing}"


def test_dashboard_covers_every_worker_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    text = " ".join(queries(dashboard))
    worker = (ROOT / "pipeline" / "stream" / "metrics.py").read_text(encoding="utf-8")
    for _, name in DECLARATION.findall(worker):
        assert name in text, f"no panel shows {name}"
