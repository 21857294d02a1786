"""The quality bar of the shipped engine on synthetic traffic, and the `evaluate` command.

The engine comes from ``personal_config(load_settings())``, exactly as the agents build it, so
a change of defaults that makes recommendations worse than the baselines fails here.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli.data import evaluate_command
from pipeline.core.events import event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.tools.evaluate import evaluate
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld, write_jsonl

N_EVENTS = 60_000
RECOMMENDERS = ("personal", "factors", "cooccurrence", "popularity", "trending", "related")
FIGURE_KEYS = {"hr@10", "ndcg@10", "mrr@10", "coverage", "cases"}


@pytest.fixture(scope="module")
def figures() -> dict:
    world = SyntheticWorld(SyntheticConfig(seed=1))
    events = [event_from_dict(raw) for raw in world.events(N_EVENTS)]
    return evaluate(events, 10, personal_config(load_settings()))


def test_personal_beats_popularity_twice(figures):
    personal, popularity = figures["personal"], figures["popularity"]
    assert personal["cases"] > 500
    assert personal["hr@10"] >= 2 * popularity["hr@10"], figures


def test_related_beats_popularity(figures):
    related, popularity = figures["related"], figures["popularity"]
    assert related["cases"] > 500
    assert related["hr@10"] > 1.5 * popularity["hr@10"], figures


def test_personal_covers_more_of_the_catalog(figures):
    assert figures["personal"]["coverage"] > figures["popularity"]["coverage"]


def test_figures_are_consistent(figures):
    assert figures["events"] == N_EVENTS
    for name in RECOMMENDERS:
        scores = figures[name]
        assert set(scores) == FIGURE_KEYS
        assert 0 <= scores["mrr@10"] <= scores["ndcg@10"] <= scores["hr@10"] <= 1
        assert 0 < scores["coverage"] <= 1
    # The baselines are asked on exactly the personal recommender's cases.
    assert figures["popularity"]["cases"] == figures["personal"]["cases"]
    assert figures["trending"]["cases"] == figures["personal"]["cases"]
    assert len(figures["curves"]["personal"]) == N_EVENTS // figures["curve_every"]


# --- the command ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("evaluate") / "events.jsonl"
    write_jsonl(SyntheticWorld(SyntheticConfig(seed=3)).events(5000), path)
    with path.open("ab") as handle:
        handle.write(b"{not json\n")
        handle.write(orjson.dumps({"event_id": "x", "type": "click", "user_id": "u"}) + b"\n")
    return path


def run(*args: str):
    result = CliRunner().invoke(evaluate_command, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_json_output(log_file):
    result = run("--events", str(log_file), "--json")
    figures = orjson.loads(result.stdout)
    assert isinstance(figures, dict)
    for key in ("events", "seconds", "events_per_second", "k", "catalog_size"):
        assert key in figures
    assert "curves" not in figures
    assert figures["events"] == 5000 and figures["k"] == 10
    assert figures["invalid_lines"] == 2
    for name in RECOMMENDERS:
        assert set(figures[name]) == FIGURE_KEYS
    assert "skipped 2 invalid lines" in result.stderr
    assert f"{log_file}:5001:" in result.stderr and f"{log_file}:5002:" in result.stderr


def test_json_curves_on_request(log_file):
    result = run("--events", str(log_file), "--json", "--curves", "--k", "5")
    figures = orjson.loads(result.stdout)
    assert figures["k"] == 5 and "hr@5" in figures["personal"]
    assert len(figures["curves"]["personal"]) == 5


def test_table_and_plot(log_file, tmp_path):
    plot = tmp_path / "hr.png"
    result = run("--events", str(log_file), "--plot", str(plot))
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    lines = result.stdout.splitlines()
    assert lines[0].split(" | ")[0].strip() == "recommender"
    assert [line.split(" | ")[0].strip() for line in lines[2:8]] == list(RECOMMENDERS)
    assert "events/s" in result.stdout
    assert "personal HR@10 / popularity HR@10" in result.stdout
    assert "related HR@10 / popularity HR@10" in result.stdout


def test_a_log_without_valid_events_fails_cleanly(tmp_path):
    path = tmp_path / "bad.jsonl"
    # A list as "type" is outside event_from_dict's contract (TypeError): still only skipped.
    odd = {"event_id": "x", "type": ["click"], "user_id": "u", "timestamp": 1_767_225_600_000}
    path.write_bytes(b"[]\n\xff\xfe\n" + orjson.dumps(odd) + b"\n")
    result = CliRunner().invoke(evaluate_command, ["--events", str(path), "--json"])
    assert result.exit_code == 1
    assert "skipped 3 invalid lines" in result.stderr
    assert "no valid events" in result.stderr
