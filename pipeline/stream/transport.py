"""Faust's aiokafka transport, with the consumer's fetch wait set by the worker.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500``. Apache Kafka answers a
fetch as soon as a message arrives, so that wait costs nothing there; the embedded broker
(Tansu) holds every fetch for the whole wait, so a message could sit 1.5 s before a worker
sees it. Workers therefore use this transport (scheme ``streamrec-kafka://``), whose
consumer waits ``worker_fetch_max_wait_ms`` at most. The same consumer tells the worker's
metrics what its fetches saw (:meth:`ConsumerThread.fetch_state`): consumer lag needs no
request of its own.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as driver

SCHEME = "streamrec-kafka"
# The app attribute that carries the wait (set by ``pipeline.stream.app.faust_app``).
FETCH_WAIT_ATTRIBUTE = "streamrec_fetch_max_wait_ms"
# The app attribute where the consumer thread puts itself once its consumer exists.
CONSUMER_ATTRIBUTE = "streamrec_consumer_thread"


class ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this when it starts its fetcher; Faust offers no setting for it.
        consumer._fetch_max_wait_ms = getattr(self.app, FETCH_WAIT_ATTRIBUTE)
        setattr(self.app, CONSUMER_ATTRIBUTE, self)
        return consumer

    def fetch_state(self) -> dict[tuple[str, int], tuple[int | None, int | None]]:
        """(topic, partition) -> (high-water mark, fetch position) of every assigned
        partition, as the consumer's last fetch responses left them (None: not known yet).

        Reads aiokafka's partition states without a request and without the consumer's
        thread: plain attribute reads, safe from the metrics server's thread.
        """
        consumer = self._consumer
        subscription = None if consumer is None else consumer._subscription.subscription
        assignment = None if subscription is None else subscription.assignment
        if assignment is None:
            return {}
        found: dict[tuple[str, int], tuple[int | None, int | None]] = {}
        for tp in list(assignment.tps):
            state = assignment.state_value(tp)
            if state is None:
                continue
            try:
                position = state.position if state.has_valid_position else None
            except AssertionError:
                # Reset by the consumer's thread between the two reads.
                position = None
            found[(tp.topic, tp.partition)] = (state.highwater, position)
        return found


class Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    Consumer = Consumer


def register() -> None:
    """Make ``streamrec-kafka://`` a Faust transport (idempotent)."""
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def fetch_state_of(app: Any) -> dict[tuple[str, int], tuple[int | None, int | None]]:
    """:meth:`ConsumerThread.fetch_state` of ``app``'s consumer; empty before it exists."""
    thread = getattr(app, CONSUMER_ATTRIBUTE, None)
    return {} if thread is None else thread.fetch_state()
