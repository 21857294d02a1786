"""The related-items configuration as the operator set it."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.related.model import RelatedConfig


def related_config(settings: Settings) -> RelatedConfig:
    return config_of(RelatedConfig, settings, "related_")
