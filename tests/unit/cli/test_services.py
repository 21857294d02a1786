"""Configuration mistakes stop a service with a one-line error, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli


def test_a_broken_scenarios_file_stops_the_reader_with_where_it_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "scenarios.yaml"
    broken.write_text(
        "scenarios:\n  home:\n    stages:\n      - name: s\n        sources:\n          - source: magic\n"
    )
    monkeypatch.setenv("PIPELINE_SCENARIOS_FILE", str(broken))
    result = CliRunner().invoke(cli, ["reader"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "scenario 'home', stages[0].sources[0]" in result.output
    assert "Traceback" not in result.output


def test_a_malformed_api_key_stops_the_collector_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_WRITE_API_KEYS", '["short"]')
    result = CliRunner().invoke(cli, ["collector"])
    assert result.exit_code == 1 and "Error:" in result.output
    assert "PIPELINE_WRITE_API_KEYS" in result.output and "short" not in result.output
