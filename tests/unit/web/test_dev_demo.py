"""``pipeline dev`` turns the demo page on and lets the reader's page call the collector."""

from __future__ import annotations

from pipeline.core.settings import load_settings
from pipeline.tools.dev import child_env, with_demo


def test_dev_serves_the_demo_and_allows_the_readers_origins() -> None:
    settings = with_demo(load_settings(reader_port=18000, cors_origins=["https://shop.example"]))
    assert settings.demo_page is True
    assert settings.cors_origins == [
        "https://shop.example",
        "http://127.0.0.1:18000",
        "http://localhost:18000",
    ]
    # Children (reader, collector) get both through the environment.
    env = child_env(settings)
    assert env["PIPELINE_DEMO_PAGE"] == "True"
    assert "http://localhost:18000" in env["PIPELINE_CORS_ORIGINS"]
    # Applying it twice adds nothing.
    assert with_demo(settings).cors_origins == settings.cors_origins


def test_a_specific_reader_host_is_the_origin() -> None:
    assert with_demo(load_settings(reader_host="10.0.0.5")).cors_origins == ["http://10.0.0.5:8000"]
    assert with_demo(load_settings(reader_host="::1")).cors_origins == ["http://[::1]:8000"]
    assert with_demo(load_settings(reader_host="0.0.0.0")).cors_origins == [
        "http://127.0.0.1:8000",
        "http://localhost:8000",
    ]
