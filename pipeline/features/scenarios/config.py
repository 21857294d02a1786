"""``scenarios.yaml`` read from the file the settings name (``scenarios_file``), loaded once
when the reader starts; a mistake stops it with a message naming the file, scenario and key."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.features.scenarios.spec import Scenario, ScenarioFileError, parse_scenarios


def load_scenarios(path: Path | str) -> dict[str, Scenario]:
    """Read and validate ``scenarios.yaml``; :class:`ScenarioFileError` says what is wrong."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioFileError(
            f"scenarios file {path} not found: run from the repository root or set "
            "PIPELINE_SCENARIOS_FILE"
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{path} is not valid YAML: {exc}") from None
    return parse_scenarios(document, path)
