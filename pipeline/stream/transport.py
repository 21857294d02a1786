"""Faust's aiokafka transport, with the consumer's fetch wait set by the worker.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500``. Apache Kafka answers a
fetch as soon as a message arrives, so that wait costs nothing there; the embedded broker
(Tansu) holds every fetch for the whole wait, so a message could sit 1.5 s before a worker
sees it. Workers therefore use this transport (scheme ``streamrec-kafka://``), whose
consumer waits ``worker_fetch_max_wait_ms`` at most.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

SCHEME = "streamrec-kafka"
# The app attribute that carries the wait (set by ``pipeline.stream.app.faust_app``).
FETCH_WAIT_ATTRIBUTE = "streamrec_fetch_max_wait_ms"


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it starts its fetcher; Faust offers no setting for it.
        consumer._fetch_max_wait_ms = getattr(self.app, FETCH_WAIT_ATTRIBUTE)
        return consumer


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer


def register() -> None:
    """Make ``streamrec-kafka://`` a Faust transport (idempotent)."""
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"
