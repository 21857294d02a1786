"""The click model's configuration as the operator set it."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.ranking.model import RankingConfig


def ranking_config(settings: Settings) -> RankingConfig:
    return config_of(RankingConfig, settings, "ranking_")
