"""The collector's Kafka producer: started in the background, retried until the broker
answers, used by every publishing route, stopped with the app.

The collector may start before Kafka: startup waits ``STARTUP_WAIT_S`` for the first
connection, then serves 503 (with the reason) while a background task keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.errors import KafkaError

from pipeline.core.settings import Settings
from pipeline.stream.kafka import new_producer

log = logging.getLogger(__name__)

# Longest a request waits for Kafka's acknowledgements. aiokafka's own request timeout is
# 40 s; a website's tracking call should fail (and retry) much sooner.
PRODUCE_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 2.0
STARTUP_WAIT_S = 5.0
RETRY_MAX_S = 10.0

# (topic, key, value)
Message = tuple[str, bytes, bytes]


class PublishFailed(Exception):
    """Kafka did not acknowledge (or no producer is connected); ``str`` says why."""


async def produce_all(producer: Any, messages: list[Message]) -> None:
    """Send messages and wait for every acknowledgement.

    With ``send`` (aiokafka) all messages are queued first and awaited together, so they
    travel in batches; a producer with only ``send_and_wait`` is awaited concurrently.
    """
    if hasattr(producer, "send"):
        futures: list[asyncio.Future[Any]] = []
        try:
            for topic, key, value in messages:
                futures.append(await producer.send(topic, value=value, key=key))
        except BaseException:
            # The request fails; retrieve the queued sends' outcomes so none goes unobserved.
            for future in futures:
                future.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise
        await asyncio.gather(*futures)
    else:
        await asyncio.gather(
            *(producer.send_and_wait(topic, value=value, key=key) for topic, key, value in messages)
        )


class Publisher:
    """Owns the producer of one app. An injected producer is used as is: never started nor
    stopped (tests)."""

    def __init__(self, settings: Settings, producer: Any = None) -> None:
        self.settings = settings
        self.producer = producer
        self.injected = producer is not None
        self.error: str | None = None if self.injected else "producer not started yet"
        self._starter: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.injected:
            return
        self._starter = asyncio.create_task(self._keep_starting())
        await asyncio.wait({self._starter}, timeout=STARTUP_WAIT_S)

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starter
        if not self.injected and self.producer is not None:
            await self.producer.stop()

    async def _keep_starting(self) -> None:
        delay = 0.5
        bootstrap = self.settings.kafka_bootstrap
        while True:
            candidate = new_producer(self.settings, linger_ms=5)
            try:
                await candidate.start()
            except asyncio.CancelledError:
                # Shutdown during a connection attempt: close the half-started client.
                with contextlib.suppress(Exception):
                    await candidate.stop()
                raise
            except (KafkaError, OSError) as exc:
                self.error = f"Kafka at {bootstrap}: {exc}"
                log.warning("collector: %s; retrying in %.1f s", self.error, delay)
                with contextlib.suppress(Exception):
                    await candidate.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            self.producer = candidate
            self.error = None
            return

    async def publish(self, messages: list[Message]) -> None:
        """Produce and wait for Kafka's acknowledgements; :class:`PublishFailed` otherwise."""
        if self.producer is None:
            raise PublishFailed(self.error or "no producer")
        try:
            async with asyncio.timeout(PRODUCE_TIMEOUT_S):
                await produce_all(self.producer, messages)
        except (KafkaError, OSError) as exc:  # OSError covers the deadline's TimeoutError
            reason = str(exc) or type(exc).__name__
            raise PublishFailed(
                f"Kafka did not acknowledge the events ({reason}); resend them"
            ) from exc

    async def readiness(self) -> str | None:
        """None when ready; else why not (no producer, or no broker metadata in time)."""
        if self.producer is None:
            return self.error or "no producer"
        client = getattr(self.producer, "client", None)
        if client is None:  # an injected producer without a Kafka client
            return None
        try:
            updated = await asyncio.wait_for(client.force_metadata_update(), READY_TIMEOUT_S)
        except (KafkaError, OSError) as exc:  # OSError covers wait_for's TimeoutError
            return f"no broker metadata within {READY_TIMEOUT_S:g} s: {exc!r}"
        return None if updated else "the broker did not answer a metadata request"
