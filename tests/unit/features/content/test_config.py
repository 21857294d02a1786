"""The content settings parse from the environment and become the feature's configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.core.settings import load_settings
from pipeline.features.content.config import content_config
from pipeline.features.content.engine import ContentConfig


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert content_config(load_settings()) == ContentConfig(256, ("title", "description"), 20, 0.05)
    monkeypatch.setenv("PIPELINE_CONTENT_DIM", "512")
    monkeypatch.setenv("PIPELINE_CONTENT_TEXT_FIELDS", '["title", "brand", "notes"]')
    monkeypatch.setenv("PIPELINE_CONTENT_NEIGHBOURS", "50")
    monkeypatch.setenv("PIPELINE_CONTENT_MIN_SIMILARITY", "0.2")
    assert content_config(load_settings()) == ContentConfig(
        512, ("title", "brand", "notes"), 50, 0.2
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"content_dim": 8},
        {"content_dim": 10_000},
        {"content_neighbours": 0},
        {"content_neighbours": 201},
        {"content_min_similarity": 1.0},
        {"content_min_similarity": -0.1},
    ],
)
def test_out_of_range_values_are_refused(overrides: dict) -> None:
    with pytest.raises(ValidationError):
        load_settings(**overrides)
