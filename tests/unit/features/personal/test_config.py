"""The personal configuration comes from settings, and only from there."""

from __future__ import annotations

import dataclasses

from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.mf import ImplicitMF


def test_every_field_comes_from_the_setting_of_its_name() -> None:
    settings = load_settings(
        mf_factors=7,
        neighbour_items=3,
        history_length=9,
        related_view_window_s=44,
        positive_rating=5,
    )
    config = personal_config(settings)
    assert config.mf.factors == 7 and config.mf.model().n_factors == 7
    assert config.blend.neighbour_items == 3
    assert config.history.length == 9
    assert config.related.view_window_s == 44
    assert config.feedback.positive_rating == 5
    for part in (config.mf, config.blend, config.history, config.related):
        assert all(value is not None for value in dataclasses.asdict(part).values())


def test_the_factor_model_defaults_are_the_shipped_settings() -> None:
    """ImplicitMF keeps River-style constructor defaults; they must not drift from settings."""
    shipped = personal_config(load_settings()).mf.model()._get_params()
    defaults = ImplicitMF()._get_params()
    assert {name: defaults[name] for name in shipped} == shipped
