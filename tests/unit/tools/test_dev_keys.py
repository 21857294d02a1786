"""``pipeline dev`` checks API keys like production: it draws a write and a read key when none
is configured, and its banner shows drawn keys only (pipeline.tools.dev)."""

from __future__ import annotations

from pipeline.api.security import READER_ACCESS, WRITE, key_ring
from pipeline.core.settings import load_settings, to_env
from pipeline.tools.dev import child_env, key_lines, with_keys


def test_keys_are_drawn_when_none_is_configured() -> None:
    settings, generated = with_keys(load_settings())
    assert generated
    (write,), (read,) = settings.write_api_keys, settings.read_api_keys
    assert write != read and len(write) >= 32 and len(read) >= 32
    # Each run draws its own.
    assert with_keys(load_settings())[0].write_api_keys != [write]
    # The services accept them (length and characters), and the children get them.
    ring = key_ring(settings, READER_ACCESS)
    assert ring is not None and ring.role_of(write.encode()) == WRITE
    env = child_env(settings)
    assert env["PIPELINE_WRITE_API_KEYS"] == to_env(settings)["PIPELINE_WRITE_API_KEYS"]
    assert write in env["PIPELINE_WRITE_API_KEYS"]
    banner = key_lines(settings, generated)
    assert write in banner and read in banner and "X-API-Key" in banner


def test_configured_keys_are_kept_and_never_printed() -> None:
    mine = load_settings(write_api_keys=["my-own-write-key-0123"])
    settings, generated = with_keys(mine)
    assert not generated and settings is mine
    banner = key_lines(settings, generated)
    assert "my-own-write-key" not in banner and "PIPELINE_WRITE_API_KEYS" in banner
