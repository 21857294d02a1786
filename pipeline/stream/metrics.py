"""Prometheus metrics of the agents (served on ``PIPELINE_WORKER_METRICS_PORT``).

Counters carry the agent group (``agent``) and the topic the message came from (``topic``);
the batch time and the consumer lag carry the worker's groups joined by ``+`` (one batch, one
consumer group, applies every group of a worker). The lag is computed when Prometheus scrapes,
from the high-water marks the consumer's fetch responses already carry: no extra request to
the broker.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

MESSAGES = Counter(
    "pipeline_messages_total", "Kafka messages taken by an agent group", ["agent", "topic"]
)
APPLIED = Counter("pipeline_records_applied_total", "Records applied to Redis", ["agent", "topic"])
REJECTED = Counter(
    "pipeline_records_rejected_total",
    "Records sent to the dead-letter topic",
    ["agent", "topic"],
)
REPLAYED = Counter(
    "pipeline_messages_replayed_total",
    "Messages skipped by the offset fence (applied before: redelivery)",
    ["agent", "topic"],
)
BATCH_SECONDS = Histogram(
    "pipeline_batch_seconds", "Time to apply one batch (every group of the worker)", ["agent"]
)

# (topic, partition) -> (high-water mark, fetch position): what the consumer's last fetch
# responses left, either None when not known yet.
FetchState = Callable[[], dict[tuple[str, int], tuple[int | None, int | None]]]


def count_lane(
    agent: str,
    topics: Sequence[str],
    fresh_topics: Sequence[str],
    applied_topics: Sequence[str],
) -> None:
    """Count one group's part of a batch: the topic of each message it read, of each message
    past its fence that was applied, and of each record applied."""
    taken, fresh, applied = Tally(topics), Tally(fresh_topics), Tally(applied_topics)
    for topic, count in taken.items():
        MESSAGES.labels(agent, topic).inc(count)
        REPLAYED.labels(agent, topic).inc(count - fresh[topic])
    for topic, count in applied.items():
        APPLIED.labels(agent, topic).inc(count)


class ConsumerLag(Collector):
    """``pipeline_consumer_lag{agent, topic, partition}``: messages of a partition not yet
    applied, the partition's high-water mark minus the next offset to apply.

    The next offset is one past the last offset this worker applied (or skipped by its
    fence); for a partition it has not taken a message from since it was assigned, the
    consumer's fetch position (the committed offset) stands in. Partitions whose high-water
    mark no fetch has returned yet have no sample.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[str, FetchState] = {}
        self._next: dict[str, dict[tuple[str, int], int]] = {}

    def watch(self, agent: str, source: FetchState) -> None:
        """Report the partitions of ``source`` under ``agent`` (replaces an earlier source)."""
        with self._lock:
            self._sources[agent] = source
            self._next[agent] = {}

    def applied(self, agent: str, positions: Iterable[tuple[str, int, int]]) -> None:
        """(topic, partition, offset) of messages the worker is done with."""
        with self._lock:
            done = self._next.setdefault(agent, {})
            for topic, partition, offset in positions:
                if offset + 1 > done.get((topic, partition), -1):
                    done[(topic, partition)] = offset + 1

    def forget(self, agent: str) -> None:
        """Partitions were revoked: another worker may move them on from now."""
        with self._lock:
            self._next[agent] = {}

    def lags(self) -> dict[tuple[str, str, int], int]:
        """(agent, topic, partition) -> lag of every assigned partition with a known end."""
        with self._lock:
            sources = list(self._sources.items())
            done = {agent: dict(offsets) for agent, offsets in self._next.items()}
        found = {}
        for agent, source in sources:
            for (topic, partition), (highwater, position) in source().items():
                start = done.get(agent, {}).get((topic, partition), position)
                if highwater is None or start is None:
                    continue
                found[(agent, topic, partition)] = max(highwater - start, 0)
        return found

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "pipeline_consumer_lag",
            "Messages of a partition not yet applied (high-water mark of the last fetch "
            "minus the next offset to apply)",
            labels=["agent", "topic", "partition"],
        )
        for (agent, topic, partition), lag in sorted(self.lags().items()):
            family.add_metric([agent, topic, str(partition)], lag)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("pipeline_consumer_lag", "", labels=["agent", "topic", "partition"])


LAG = ConsumerLag()
REGISTRY.register(LAG)
