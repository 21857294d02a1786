"""The segments configuration as the operator set it."""

from __future__ import annotations

from pipeline.core.settings import Settings, config_of
from pipeline.features.segments.model import SegmentsConfig


def segments_config(settings: Settings) -> SegmentsConfig:
    return config_of(SegmentsConfig, settings, "segments_", feedback=settings.feedback)
