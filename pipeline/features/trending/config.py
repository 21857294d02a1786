"""The trending configuration as the operator set it."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.trending.model import TrendingConfig


def trending_config(settings: Settings) -> TrendingConfig:
    return config_of(TrendingConfig, settings, "trending_", feedback=settings.feedback)
