"""A running stack for the benchmarks that need one: broker, Redis, a worker with every
agent group that has applied some traffic, the reader, and optional background traffic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.keys import Keys
from pipeline.core.settings import Settings, to_env
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.redis import RedisStore, connect
from pipeline.tools.bench.common import (
    fresh_settings,
    publish,
    services,
    start_worker,
    topics_of,
    wait_applied,
    world,
)
from pipeline.tools.local import ManagedProcess, free_port, spawn, wait_for_port

LOGS = Path(tempfile.gettempdir()) / "pipeline-bench"


@dataclass
class Stack:
    settings: Settings
    store: RedisStore
    reader_url: str
    processes: list[ManagedProcess]

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    def spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        env = {**os.environ, **to_env(self.settings)}
        process = spawn(name, argv, LOGS / f"{name}.log", env)
        self.processes.append(process)
        return process


@contextlib.asynccontextmanager
async def running_stack(warmup_events: int, background_rate: float = 0.0) -> AsyncIterator[Stack]:
    """Everything running, ``warmup_events`` applied; with ``background_rate``, synthetic
    traffic keeps arriving at that many events per second."""
    LOGS.mkdir(exist_ok=True)
    with services() as found:
        settings = fresh_settings(found, reader_port=free_port())
        published = await publish(settings, world(events=warmup_events), warmup_events, 1)
        topics = declared_topics(settings)
        expected = {g: published.count(topics_of(topics, [g]))[0] for g in AGENT_GROUPS}
        store = connect(settings)
        stack = Stack(settings, store, f"http://127.0.0.1:{settings.reader_port}", [])
        try:
            stack.processes.append(start_worker(settings, list(AGENT_GROUPS), LOGS / "worker.log"))
            await wait_applied(store, settings, expected, 600, LOGS / "worker.log")
            reader = stack.spawn("reader", [sys.executable, "-m", "pipeline", "reader"])
            await asyncio.to_thread(
                wait_for_port, "127.0.0.1", settings.reader_port, 30.0, reader.process
            )
            if background_rate > 0:
                argv = [sys.executable, "-m", "pipeline", "generate", "--kafka", "--seed", "7"]
                stack.spawn("traffic", [*argv, "--rate", str(background_rate)])
            yield stack
        finally:
            for process in reversed(stack.processes):
                process.stop()
            await store.close()
