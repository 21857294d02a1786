"""The quality bar of the shipped engine on synthetic traffic, and the `evaluate` command.

The engine comes from ``personal_config(load_settings())``, exactly as the agents build it, so
a change of defaults that makes recommendations worse than the baselines fails here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from pipeline.cli.data import evaluate_command
from pipeline.core.events import event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.tools.evaluate import ColdStart, evaluate
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld, write_jsonl

N_EVENTS = 60_000
RECOMMENDERS = ("personal", "factors", "cooccurrence", "popularity", "trending", "related")
FIGURE_KEYS = {"hr@10", "ndcg@10", "mrr@10", "coverage", "cases"}


@pytest.fixture(autouse=True)
def _collector_thresholds_restored() -> Iterator[None]:
    """The evaluate command sets the process's garbage-collection thresholds (run in process
    here): this test process gets its own back after each test."""
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)


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


# --- cold start -----------------------------------------------------------------------------


# Event times below are offsets from this instant (timestamps must be from 1973 on).
T0 = 1_700_000_000_000


def _event(user: str, item: str, kind: str, at_ms: int, n: int) -> object:
    return event_from_dict(
        {
            "event_id": f"e{n}",
            "type": kind,
            "user_id": user,
            "item_id": item,
            "timestamp": T0 + at_ms,
        }
    )


def test_cold_start_cases_are_a_subset_of_all_cases(figures):
    cold = figures["cold_start"]
    assert cold["new_user_events"] == 3
    for group in ("new_items", "new_users", "cold_items"):
        for name in RECOMMENDERS:
            part, whole = cold[group][name], figures[name]
            assert set(part) == FIGURE_KEYS
            assert part["cases"] <= whole["cases"]
    # The synthetic log spans less than a day: every item is new by the default age.
    assert cold["new_items"]["personal"]["cases"] == figures["personal"]["cases"]
    # A user's first conversions come before their third event only sometimes.
    assert 0 < cold["new_users"]["personal"]["cases"] < figures["personal"]["cases"]


def test_items_are_new_by_creation_or_first_sight():
    hour = 3_600_000
    cold = ColdStart(new_item_age_ms=hour, created_at_ms={"made": T0})
    assert cold.item_is_new("never-seen", T0 + 10 * hour)
    assert cold.item_is_new("made", T0 + hour - 1)
    assert not cold.item_is_new("made", T0 + hour)
    cold.observe(_event("u", "seen", "click", 5 * hour, 1))
    assert cold.item_is_new("seen", T0 + 6 * hour - 1)
    assert not cold.item_is_new("seen", T0 + 6 * hour)
    # Created after its first sight (a catalog published late): the earlier time counts.
    cold = ColdStart(new_item_age_ms=hour, created_at_ms={"late": T0 + 9 * hour})
    cold.observe(_event("u", "late", "click", 0, 2))
    assert not cold.item_is_new("late", T0 + 9 * hour)


def test_users_are_new_before_their_third_event_and_logins_carry_counts():
    cold = ColdStart(new_user_events=3)
    for n in range(2):
        cold.observe(_event("anon", f"i{n}", "click", n, n))
    assert cold.user_is_new("anon")
    login = event_from_dict(
        {
            "event_id": "l",
            "type": "login",
            "user_id": "user",
            "previous_user_id": "anon",
            "timestamp": T0 + 5,
        }
    )
    cold.observe(login)
    cold.observe(_event("user", "i9", "click", 6, 9))
    assert not cold.user_is_new("user")
    assert cold.user_is_new("anon")


def test_new_item_cases_counted_apart():
    hour = 3_600_000
    log = [
        _event("a", "old", "click", 0, 1),
        _event("a", "old", "buy", 1, 2),  # not a case: "a" met "old" before
        _event("b", "old", "buy", 2 * hour, 3),  # old item (first seen 2 h before), new user
        _event("c", "fresh", "buy", 2 * hour + 1, 4),  # never seen: new item, new user
    ]
    out = evaluate(log, 10, personal_config(load_settings()), cold=ColdStart(hour, 3))
    assert out["personal"]["cases"] == 2
    assert out["cold_start"]["new_items"]["personal"]["cases"] == 1
    assert out["cold_start"]["new_users"]["personal"]["cases"] == 2
    # Cold items: "old" had 2 earlier events, "fresh" none; with a bar of 2 only "fresh" is.
    cold = ColdStart(hour, 3, cold_item_events=2)
    out = evaluate(log, 10, personal_config(load_settings()), cold=cold)
    assert out["cold_start"]["cold_item_events"] == 2
    assert out["cold_start"]["cold_items"]["personal"]["cases"] == 1
    out = evaluate(log, 10, personal_config(load_settings()), cold=ColdStart(hour, 3))
    assert out["cold_start"]["cold_items"]["personal"]["cases"] == 2


def test_command_reports_cold_start(log_file, tmp_path):
    catalog = tmp_path / "items.jsonl"
    catalog.write_bytes(
        orjson.dumps({"item_id": "item-1", "created_at": 1_700_000_000_000}) + b"\n{bad\n"
    )
    result = run("--events", str(log_file), "--catalog", str(catalog), "--new-item-age", "60")
    assert "cold start, HR@10:" in result.output
    assert "new items (created or first seen < 0.0166667 h before)" in result.output
    out = orjson.loads(
        run("--events", str(log_file), "--json", "--new-user-events", "5").output.splitlines()[-1]
    )
    assert out["cold_start"]["new_user_events"] == 5
    out = orjson.loads(
        run("--events", str(log_file), "--json", "--cold-item-events", "2").output.splitlines()[-1]
    )
    assert out["cold_start"]["cold_item_events"] == 2
    assert "cold items (< 5 earlier events named them)" in result.output
    assert out["cold_start"]["new_items"]["personal"]["cases"] >= 0


def test_with_content_on_a_never_seen_item_can_be_a_hit_and_the_plain_engine_is_reported():
    """A catalog with text and content on: the engine knows a new item from its text before
    its first event, so its first conversion can be a hit; the same run's engine without
    content cannot, and is reported as ``personal_without_content``."""
    from pipeline.core.items import Item
    from pipeline.features.content.config import content_config

    settings = load_settings(content_taste_weight=1.0)
    catalog = [Item(f"k{n}", (), title=f"kitchen knife chef steel {n}") for n in range(6)]
    catalog += [Item(f"g{n}", (), title=f"garden hose water green {n}") for n in range(6)]
    catalog.append(Item("k-new", (), title="chef knife kitchen", created_at_ms=T0 + 5_000_000))
    log = []
    t = 1_000
    for n in range(40):
        user, group = f"u{n % 4}", "kg"[n % 2]
        log.append(_event(user, f"{group}{(n // 2) % 6}", "click", t, len(log)))
        t += 1_000
    log.append(_event("u0", "k-new", "buy", 6_000_000, len(log)))
    out = evaluate(
        log,
        10,
        personal_config(settings),
        catalog=catalog,
        content=content_config(settings),
    )
    assert out["personal_without_content"]["cases"] == out["personal"]["cases"]
    new_items = out["cold_start"]["new_items"]
    assert new_items["personal"]["hr@10"] > new_items["personal_without_content"]["hr@10"] == 0
    # Content off (the default): no second engine, nothing reported for it.
    plain = evaluate(log, 10, personal_config(load_settings()), catalog=catalog)
    assert "personal_without_content" not in plain


def test_coverage_counts_the_same_items_with_or_without_a_catalog():
    """Catalog items that no event names and nobody was served do not dilute coverage:
    a run with the catalog and one without report the same figures (content off)."""
    from pipeline.core.items import Item

    log = [
        _event(f"u{n % 3}", f"i{n % 5}", "buy" if n % 4 == 3 else "click", 1_000 * n, n)
        for n in range(60)
    ]
    catalog = [Item(f"i{n}", ("c",)) for n in range(50)]
    config = personal_config(load_settings())
    without = evaluate(log, 10, config)
    with_catalog = evaluate(log, 10, config, catalog=catalog)
    assert with_catalog["catalog_size"] == without["catalog_size"] == 5
    for name in RECOMMENDERS:
        assert with_catalog[name]["coverage"] == without[name]["coverage"] <= 1.0


def test_an_item_met_before_the_history_kept_is_still_no_case():
    """A conversion of an item the user clicked long ago, longer than the history keeps, is
    not a case: the cases must not grow as PIPELINE_HISTORY_LENGTH shrinks."""
    config = personal_config(load_settings(history_length=5))
    log = [_event("a", "early", "click", 0, 0)]
    log += [_event("a", f"other{n}", "click", n, n) for n in range(1, 10)]
    log += [_event("a", "early", "buy", 10, 10), _event("a", "never", "buy", 11, 11)]
    out = evaluate(log, 10, config)
    assert out["personal"]["cases"] == 1  # the buy of "never" only
    # A login brings what the anonymous id met (also what its history no longer holds); a
    # forget drops what the user met.
    login = event_from_dict(
        {
            "event_id": "l",
            "type": "login",
            "user_id": "b",
            "previous_user_id": "anon",
            "timestamp": T0 + 40,
        }
    )
    forget = event_from_dict(
        {"event_id": "f", "type": "forget", "user_id": "c", "timestamp": T0 + 51}
    )
    log = [_event("anon", "x", "click", 20, 20)]
    log += [_event("anon", f"other{n}", "click", 20 + n, 20 + n) for n in range(1, 10)]
    log += [
        login,
        _event("b", "x", "buy", 42, 42),
        _event("c", "y", "click", 50, 50),
        forget,
        _event("c", "y", "buy", 52, 52),
    ]
    assert evaluate(log, 10, config)["personal"]["cases"] == 1  # c's buy of "y" only
