"""scenarios.yaml: the shipped file is valid, and every mistake names file, scenario and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.core.events import EVENT_TYPES
from pipeline.core.settings import load_settings
from pipeline.features.scenarios.config import load_scenarios
from pipeline.features.scenarios.spec import ScenarioFileError, check_references, parse_scenarios

SHIPPED = Path(__file__).resolve().parents[4] / "scenarios.yaml"
FILE = Path("scenarios.yaml")


def test_the_shipped_scenarios_load_and_reference_existing_settings() -> None:
    scenarios = load_scenarios(SHIPPED)
    assert {"home", "product_page", "basket", "category_page", "email"} <= set(scenarios)
    settings = load_settings()
    check_references(
        scenarios,
        set(settings.trending_kinds),
        set(settings.trending_windows),
        set(EVENT_TYPES),
        SHIPPED,
    )
    home = scenarios["home"].describe()
    assert home["name"] == "home" and home["stages"][0]["sources"][0]["source"] == "personal"


def test_every_key_of_the_shipped_file_is_commented() -> None:
    lines = SHIPPED.read_text().splitlines()
    # Each scenario and each top-level key of a scenario has a comment right above it.
    for index, line in enumerate(lines):
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   ") and stripped.endswith(":"):
            assert lines[index - 1].strip().startswith("#"), f"scenario without comment: {line}"


def _one(**scenario: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"stages": [{"name": "s", "sources": [{"source": "trending"}]}]}
    base.update(scenario)
    return {"scenarios": {"home": base}}


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"scenario": {}}, "scenarios.yaml: scenarios: Field required"),
        ({"scenarios": {}}, "scenarios.yaml: scenarios"),
        (_one(stages=[]), "scenario 'home', stages"),
        (_one(stages=[{"name": "s", "sources": [{"source": "magic"}]}]), "stages[0].sources[0]"),
        (
            _one(stages=[{"name": "s", "sources": [{"source": "personal", "weight": -1}]}]),
            "stages[0].sources[0].personal.weight",
        ),
        (
            _one(stages=[{"name": "s", "sources": [{"source": "personal", "colour": 1}]}]),
            "stages[0].sources[0].personal.colour: Extra inputs",
        ),
        (_one(filters={"where": ["price <= $nope"]}), "scenario 'home', filters.where[0]"),
        (_one(filters={"max_per_category": -1}), "filters.max_per_category"),
        (_one(params={"n": {"type": "number"}}), "scenario 'home', params"),
        (_one(params={"p": {"type": "date"}}), "params.p.type"),
        (
            _one(stages=[{"name": "s", "sources": [{"source": "trending"}]}] * 2),
            "stages: names must differ",
        ),
        (
            _one(exploration={"share": 0.6}, promotions=[{"name": "p", "share": 0.6}]),
            "share more than 1",
        ),
        (
            _one(promotions=[{"name": "p", "share": 0.2, "where": ["x >"]}]),
            "promotions[0].where[0]",
        ),
    ],
)
def test_mistakes_name_the_file_the_scenario_and_the_key(document: Any, where: str) -> None:
    with pytest.raises(ScenarioFileError) as raised:
        parse_scenarios(document, FILE)
    assert where in str(raised.value)
    assert str(raised.value).startswith("scenarios.yaml")


def test_references_to_settings_are_checked() -> None:
    scenarios = parse_scenarios(
        _one(stages=[{"name": "s", "sources": [{"source": "trending", "window": "2d"}]}]), FILE
    )
    with pytest.raises(ScenarioFileError, match=r"stages\[0\].sources\[0\].window: '2d'"):
        check_references(scenarios, {"clicks"}, {"1d"}, set(EVENT_TYPES), FILE)
    history = parse_scenarios(
        _one(stages=[{"name": "s", "sources": [{"source": "history", "types": ["look"]}]}]), FILE
    )
    with pytest.raises(ScenarioFileError, match="unknown event types"):
        check_references(history, {"clicks"}, {"1d"}, set(EVENT_TYPES), FILE)


def test_a_missing_or_broken_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFileError, match="not found"):
        load_scenarios(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios: [unclosed")
    with pytest.raises(ScenarioFileError, match="not valid YAML"):
        load_scenarios(broken)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_one()))
    assert list(load_scenarios(good)) == ["home"]
