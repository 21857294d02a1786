"""The personal engine's configuration as the operator set it (the agent and ``pipeline
evaluate`` both build it here, so the evaluation describes what production runs)."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.personal.engine import PersonalConfig
from pipeline.features.personal.history import HistoryLimits
from pipeline.features.personal.mf import FactorConfig
from pipeline.features.personal.recommend import BlendConfig
from pipeline.features.related.config import related_config


def history_limits(settings: Settings) -> HistoryLimits:
    return config_of(HistoryLimits, settings, "history_")


def personal_config(settings: Settings) -> PersonalConfig:
    return PersonalConfig(
        mf=config_of(FactorConfig, settings, "mf_"),
        blend=config_of(BlendConfig, settings, ""),
        history=history_limits(settings),
        related=related_config(settings),
        feedback=settings.feedback,
        content_dim=settings.content_dim,
        content_factor_rate=settings.content_factor_rate,
        freshness_rate=settings.freshness_rate,
    )
