"""The content configuration as the operator set it."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.content.engine import ContentConfig


def content_config(settings: Settings) -> ContentConfig:
    return config_of(
        ContentConfig, settings, "content_", text_fields=tuple(settings.content_text_fields)
    )
