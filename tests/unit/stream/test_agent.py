"""The worker's agent (``pipeline.stream.app``) when reading its stream fails: it stops the
worker (exit code 70) instead of returning to Faust, which would restart it on the same
stream past the messages read ahead and never acknowledged. A stand-in stream; no broker,
and no Redis is reached (the store is never used)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import pipeline.stream.app as app_module
from pipeline.stream.app import create_app
from pipeline.stream.metrics import LAG
from tests.unit.features.helpers import settings

pytestmark = pytest.mark.asyncio


class Stopped(Exception):
    """Stands for the process ending (``os._exit`` never returns)."""


class FailingStream:
    enable_acks = True
    should_stop = False
    app = SimpleNamespace(consumer_generation_id=1)

    async def events(self) -> Any:
        raise RuntimeError("the consumer broke")
        yield  # an async generator

    async def ack(self, event: Any) -> None:
        raise AssertionError("nothing was applied, nothing may be acknowledged")

    async def wait_for_stopped(self, event: Any, timeout: float | None = None) -> bool:
        await event.wait()
        return False


async def test_a_failing_stream_stops_the_worker(monkeypatch):
    reasons: list[str] = []

    def stop_worker(reason: str) -> None:
        reasons.append(reason)
        raise Stopped

    monkeypatch.setattr(app_module, "stop_worker", stop_worker)
    app = create_app(settings(), ["trending"])
    try:
        agent = next(iter(app.agents.values()))
        with pytest.raises(Stopped):
            await agent.fun(FailingStream())
    finally:
        LAG.forget("trending")  # create_app watched this app's lag
    assert reasons == ["agents trending: reading the stream failed"]
