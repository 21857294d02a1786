"""The freshness prior of the factor model: a learned bias per age of item.

With ``freshness_rate`` above 0, the factor model (``mf.py``) adds to the logit of every item
whose catalog record has a ``created_at`` a bias of its age: the seconds since its creation
at the latest event learned, in buckets of powers of two (bucket ``b`` holds ages in
``[2**b - 1, 2**(b+1) - 1)`` seconds; an item created later than that event is in bucket 0,
one created more than ``max_future_skew_s`` later has none, as it is not new either).
Every learning step of such an item moves its bucket's bias by ``freshness_rate`` times the
step's gradient, as the item's own bias moves: positives (mostly fresh items where freshness
matters) pull their ages up, the sampled negatives (of any age) pull theirs down. So the
model learns from the events how much an item's age says, on the site's own time scale
(classifieds fading within hours, films within years), and an item nobody has touched yet
starts from what items of its age get. Items without a creation time have no prior.

Stored as one packed float32 vector (``{p}:mf:freshness``), written as commutative deltas like
the item rows (``state.py``), so several workers add up what each learned.
Pure: numpy and compiled loops (:func:`pipeline.core.compiled.compiled`): a step's handful of
items costs numpy's per-call overhead a dozen times over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.compiled import compiled

if TYPE_CHECKING:
    from pipeline.features.personal.created import CreationTimes
    from pipeline.features.personal.mf import ImplicitMF

# Age buckets: powers of two seconds, up to about 68 years (older items share the last).
BUCKETS = 32


@compiled
def _age_bucket(created_ms: float, now_ms: float, future_ms: float, buckets: int) -> int:
    """The freshness prior's bucket of an item created at ``created_ms``:
    ``floor(log2(1 + age in seconds))``, at most ``buckets - 1`` (0 for an item created
    after ``now_ms``); ``buckets`` (no prior) for an item without a creation time (-inf),
    or created more than ``future_ms`` after ``now_ms`` (a catalog exported long after the
    events it is replayed with carries the export's time, not the item's age)."""
    if created_ms == -np.inf or created_ms > now_ms + future_ms:
        return buckets
    age_s = max((now_ms - created_ms) / 1000.0, 0.0)
    return min(int(np.log2(age_s + 1.0)), buckets - 1)


@compiled
def age_buckets(created: np.ndarray, now_ms: float, future_ms: float, buckets: int) -> np.ndarray:
    """:func:`_age_bucket` of every item of ``created`` (creation times, epoch ms)."""
    out = np.empty(created.shape[0], dtype=np.int64)
    for i in range(created.shape[0]):
        out[i] = _age_bucket(created[i], now_ms, future_ms, buckets)
    return out


@compiled
def _first_listed(index: np.ndarray, j: int) -> int:
    """The first entry of ``index`` that lists the item of entry ``j`` (``j`` itself when
    none before it does): a step's handful of items, an item listed twice counted once."""
    for earlier in range(j):
        if index[earlier] == index[j]:
            return earlier
    return j


@compiled
def prior_into_bias(
    item_bias: np.ndarray,
    index: np.ndarray,
    created: np.ndarray,
    now_ms: float,
    future_ms: float,
    prior: np.ndarray,
) -> np.ndarray:
    """Add the freshness prior of their age to the biases of the items ``index`` for one
    SGD step (once per item however often it is listed; ``prior`` has one more entry than
    buckets, 0, for items without a creation time). Returns, per entry, (the bias before,
    the bias with the prior, the bucket): what :func:`prior_out_of_bias` takes back."""
    n = index.shape[0]
    buckets = prior.shape[0] - 1
    saved = np.empty((n, 3))
    for j in range(n):
        row = index[j]
        first = _first_listed(index, j)
        if first < j:
            saved[j] = saved[first]
            continue
        bucket = _age_bucket(created[row], now_ms, future_ms, buckets)
        saved[j, 0] = item_bias[row]
        item_bias[row] += prior[bucket]
        saved[j, 1] = item_bias[row]
        saved[j, 2] = bucket
    return saved


@compiled
def prior_out_of_bias(
    item_bias: np.ndarray,
    index: np.ndarray,
    saved: np.ndarray,
    prior: np.ndarray,
    rate: float,
    prior_rate: float,
) -> None:
    """Undo :func:`prior_into_bias` after the step, keeping what the step added to each
    item's bias (``rate`` times the item's gradient), and move each item's bucket of the
    prior by ``prior_rate`` times that gradient. The last entry of ``prior`` (no creation
    time) stays 0."""
    buckets = prior.shape[0] - 1
    for j in range(index.shape[0]):
        if _first_listed(index, j) < j:
            continue
        row = index[j]
        moved = item_bias[row] - np.float32(saved[j, 1])
        item_bias[row] = np.float32(saved[j, 0]) + moved
        bucket = int(saved[j, 2])
        if bucket < buckets:
            prior[bucket] += np.float32(prior_rate) * moved / np.float32(rate)


class FreshnessPrior:
    """A bias per age bucket, and the age bucket of every model item."""

    def __init__(
        self, created: CreationTimes, model: ImplicitMF, rate: float, max_future_s: float
    ) -> None:
        self.created = created
        self.model = model
        self.rate = rate
        # Items created further than this after the latest event have no prior.
        self.future_ms = max_future_s * 1000.0
        # One more bucket, always 0: items without a creation time.
        self.bias = np.zeros(BUCKETS + 1, dtype=np.float32)
        self._drained = self.bias.copy()
        # The latest event time learned (the engine sets it): ages are counted to it.
        self.now_ms = 0
        # (now in seconds, creation times' version, items) -> every item's bucket.
        self._buckets: tuple[tuple[int, int, int] | None, np.ndarray] = (
            None,
            np.zeros(0, dtype=np.int64),
        )
        # (those buckets' key, the biases, items) -> the prior of every item: the lists of
        # a batch, computed after its learning, share one.
        self._part: tuple[tuple[object, ...] | None, np.ndarray] = (None, np.zeros(0))

    def _now_ms(self) -> float:
        # Ages count to the second: the buckets of every item are kept until it moves.
        return float(self.now_ms // 1000 * 1000)

    def buckets(self) -> np.ndarray:
        """The age bucket of every model item (index order; :data:`BUCKETS`: no creation
        time) at the latest event learned. Cached until its second, the told times or the
        items change."""
        count = len(self.model.item_ids)
        key = (self.now_ms // 1000, self.created.version, count)
        if self._buckets[0] != key:
            self._buckets = (
                key,
                age_buckets(
                    self.created.times(self.model), self._now_ms(), self.future_ms, BUCKETS
                ),
            )
        return self._buckets[1]

    def item_part(self, count: int) -> np.ndarray:
        """The prior of the first ``count`` model items (read only: it is cached)."""
        buckets = self.buckets()
        key = (self._buckets[0], self.bias.tobytes(), count)
        if self._part[0] != key:
            self._part = (key, self.bias[buckets[:count]])
        return self._part[1]

    def before_step(self, item_bias: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Add the prior to the biases of the items of a step (:func:`prior_into_bias`)."""
        created = self.created.times(self.model)
        now_ms = self._now_ms()
        return prior_into_bias(item_bias, index, created, now_ms, self.future_ms, self.bias)

    def after_step(
        self, item_bias: np.ndarray, index: np.ndarray, saved: np.ndarray, rate: float
    ) -> None:
        """Take it out again and learn from the step (:func:`prior_out_of_bias`)."""
        prior_out_of_bias(item_bias, index, saved, self.bias, rate, self.rate)

    def drain_delta(self) -> bytes | None:
        """What learning changed since the last drain, as an increment of the stored
        vector (packed little-endian float32 of the :data:`BUCKETS` biases), or None for
        nothing. The biases are rounded to what the store computes, as the item rows are
        (``ImplicitMF.drain_deltas``)."""
        delta = (self.bias[:BUCKETS] - self._drained[:BUCKETS]).astype("<f4")
        if not delta.any():
            return None
        stored = (self._drained[:BUCKETS].astype(np.float64) + delta).astype(np.float32)
        self.bias[:BUCKETS] = self._drained[:BUCKETS] = stored
        return delta.tobytes()

    def restore(self, row: bytes | None) -> None:
        """The stored vector (None, or one of another size: nothing learned yet)."""
        if row is None or len(row) != 4 * BUCKETS:
            return
        values = np.frombuffer(row, dtype="<f4")
        self.bias[:BUCKETS] = self._drained[:BUCKETS] = values
