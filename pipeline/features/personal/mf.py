"""Personalised scores: online implicit-feedback matrix factorisation.

River's ``reco`` models keep factors in dicts and score one (user, item) pair at a time;
a "for you" list must score every item for a user in one step, so this model keeps item
factors in a numpy matrix and follows River's estimator contract instead of subclassing:
hyperparameters are ``__init__`` arguments stored under the same names, ``seed`` makes runs
identical, and it offers ``learn_one``, ``predict_one`` and ``rank``.

Learning is logistic SGD on implicit feedback: a positive event pulls the user towards the
item; each positive also draws ``n_negatives`` uniformly sampled items as negatives, and
impressions without a click are weak negatives. A new user's vector starts at zero, so its
scores are the item biases: popularity, the natural cold-start answer. (Learning starts a
user from a small random vector seeded by the id, so two users' first updates differ.)
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.features.personal.kernels import sgd_step
from pipeline.features.personal.sampling import keyed_picks, stable_vector

if TYPE_CHECKING:
    from pipeline.features.personal.freshness import FreshnessPrior
    from pipeline.features.personal.words import WordFactors

# (negatives, weight, negative weight) keys whose step arrays a model keeps (_sampled_targets).
MAX_SHARED_TARGETS = 64


@dataclass(frozen=True, slots=True)
class FactorConfig:
    """The factor model as the operator set it (settings ``mf_*``)."""

    factors: int
    learning_rate: float
    l2: float
    negatives: int
    impression_weight: float
    seed: int

    def model(self) -> ImplicitMF:
        return ImplicitMF(
            n_factors=self.factors,
            learning_rate=self.learning_rate,
            l2=self.l2,
            n_negatives=self.negatives,
            seed=self.seed,
        )


def encode_vector(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def decode_vector(text: str | bytes) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


class ImplicitMF:
    """Online matrix factorisation for implicit feedback (River-style estimator)."""

    def __init__(
        self,
        n_factors: int = 32,
        learning_rate: float = 0.1,
        l2: float = 0.002,
        n_negatives: int = 4,
        negative_weight: float = 1.0,
        init_std: float = 0.1,
        seed: int = 42,
    ) -> None:
        self.n_factors = n_factors
        self.learning_rate = learning_rate
        self.l2 = l2
        self.n_negatives = n_negatives
        self.negative_weight = negative_weight
        self.init_std = init_std
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.item_ids: list[str] = []
        self.item_index: dict[str, int] = {}
        self.item_factors = np.zeros((64, n_factors), dtype=np.float32)
        self.item_bias = np.zeros(64, dtype=np.float32)
        self.user_factors: dict[str, np.ndarray] = {}
        # (bias, factors) of the items changed since the last drain as they were before the
        # first change (sampled negatives included), by index; and the items created since
        # then, whose row started at their initial vector.
        self._before: dict[int, tuple[np.float32, np.ndarray]] = {}
        # (negatives, weight, negative weight) -> the step's arrays (_sampled_targets).
        self._targets: dict[tuple[int, float, float], tuple[np.ndarray, np.ndarray]] = {}
        self._created: set[int] = set()
        # Indexes negatives are drawn from, ascending; None: every item (the default).
        self.negative_pool: list[int] | None = None
        # Items with text count their words' factors too (``words.py``); None: off.
        self.words: WordFactors | None = None
        # Items with a creation time count the prior of their age (``freshness.py``);
        # None: off.
        self.freshness: FreshnessPrior | None = None

    # --- River contract ----------------------------------------------------------------------
    def _get_params(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "n_factors",
                "learning_rate",
                "l2",
                "n_negatives",
                "negative_weight",
                "init_std",
                "seed",
            )
        }

    def clone(self) -> ImplicitMF:
        return ImplicitMF(**self._get_params())

    def learn_one(
        self, user: str, item: str, y: float = 1.0, weight: float = 1.0, key: str | None = None
    ) -> None:
        """One observation: ``y`` 1 for positive, 0 for negative feedback.

        ``key`` (the event id) makes the sampled negatives a function of the event, so a
        replay after a restart samples exactly what the first run sampled.
        """
        if y > 0 and self.n_negatives and len(self.item_ids) > 1:
            # Drawn before the item joins: a new item is never its own negative.
            negatives = self._negative_positions(item, self.n_negatives, key)
            index = self.add_item(item)
            labels, weights = self._sampled_targets(len(negatives), weight)
            self._step(user, [index, *negatives], labels, weights)
        else:
            index = self.add_item(item)
            self._step(user, [index], [float(y > 0)], [weight])
        pool = self.negative_pool
        if y > 0 and pool is not None:
            at = bisect.bisect_left(pool, index)
            if at == len(pool) or pool[at] != index:
                pool.insert(at, index)

    def _sampled_targets(self, negatives: int, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """The step's (labels, weights) arrays of a positive and ``negatives`` negatives:
        shared by the events of one weight (one per event type; the step only reads them)."""
        key = (negatives, weight, self.negative_weight)
        found = self._targets.get(key)
        if found is None:
            labels = np.zeros(1 + negatives, dtype=np.float32)
            labels[0] = 1.0
            weights = np.full(1 + negatives, self.negative_weight * weight, dtype=np.float32)
            weights[0] = weight
            found = (labels, weights)
            if len(self._targets) < MAX_SHARED_TARGETS:
                self._targets[key] = found
        return found

    def predict_one(self, user: str, item: str) -> float:
        """Probability-like score in (0, 1) that ``user`` interacts with ``item``."""
        index = self.item_index.get(item)
        if index is None:
            return 0.0
        user_vec = self.user_vector(user)
        logit = float(self.item_factors[index] @ user_vec + self.item_bias[index])
        if self.words is not None:
            factors, bias = self.words.item_part(len(self.item_ids))
            logit += float(factors[index] @ user_vec + bias[index])
        if self.freshness is not None:
            logit += float(self.freshness.item_part(len(self.item_ids))[index])
        return 1.0 / (1.0 + np.exp(-logit))

    def rank(self, user: str, items: Sequence[str]) -> list[str]:
        scores = {item: self.predict_one(user, item) for item in items}
        return sorted(items, key=lambda item: (-scores[item], item))

    # --- vectorised parts --------------------------------------------------------------------
    def add_item(self, item: str) -> int:
        index = self.item_index.get(item)
        if index is not None:
            return index
        index = len(self.item_ids)
        if index == len(self.item_factors):
            grown = len(self.item_factors) * 2
            self.item_factors = np.resize(self.item_factors, (grown, self.n_factors))
            self.item_bias = np.resize(self.item_bias, grown)
        self.item_factors[index] = stable_vector(item, self.n_factors, self.init_std, self.seed)
        self.item_bias[index] = 0.0
        self.item_ids.append(item)
        self.item_index[item] = index
        self._created.add(index)
        return index

    def add_item_like(self, item: str, factors: np.ndarray | None, bias: float = 0.0) -> int:
        """Add ``item`` (when new) starting from ``factors`` and ``bias`` (None: its noise
        vector, as :meth:`add_item`): a new item placed where items like it are (content
        neighbours). Its row is drained as a created item (base = this start) even before
        anything is learned."""
        index = self.item_index.get(item)
        if index is not None:
            return index
        index = self.add_item(item)
        if factors is not None:
            self.item_factors[index] = np.asarray(factors, dtype=np.float32)
            self.item_bias[index] = np.float32(bias)
        self._before[index] = (self.item_bias[index], self.item_factors[index].copy())
        return index

    def user_vector(self, user: str) -> np.ndarray:
        vector = self.user_factors.get(user)
        if vector is None:
            return np.zeros(self.n_factors, dtype=np.float32)
        return vector

    def use_negative_pool(self, items: Sequence[str]) -> None:
        """Draw negatives only from ``items`` and from the items later learned as positives
        (:meth:`learn_one`), instead of from every item: items that joined without an event
        (from their content) are not easy negatives. The pool is a function of which items
        had positives, so a worker rebuilding it from stored state samples as before."""
        index = self.item_index
        self.negative_pool = sorted({index[item] for item in items if item in index})

    def sample_negatives(self, positive: str, n: int, key: str | None = None) -> list[str]:
        """Up to ``n`` uniformly drawn items other than ``positive`` (from the negative pool
        when there is one)."""
        ids = self.item_ids
        return [ids[index] for index in self._negative_positions(positive, n, key)]

    def _negative_positions(self, positive: str, n: int, key: str | None) -> list[int]:
        """:meth:`sample_negatives` as model indexes."""
        pool = self.negative_pool
        count = len(self.item_ids) if pool is None else len(pool)
        if count == 0:
            return []
        if key is None:
            picks = self._rng.integers(0, count, n).tolist()
        else:
            picks = keyed_picks(key, self.seed, n, count)
        if pool is not None:
            picks = [pool[i] for i in picks]
        skip = self.item_index.get(positive, -1)
        return [index for index in picks if index != skip] if skip in picks else picks

    def learn_many(
        self, user: str, items: Sequence[str], labels: Sequence[float], weights: Sequence[float]
    ) -> None:
        """One SGD step on several (item, label, weight) observations of one user."""
        self._step(user, [self.add_item(item) for item in items], labels, weights)

    def _step(
        self,
        user: str,
        positions: list[int],
        labels: Sequence[float] | np.ndarray,
        weights: Sequence[float] | np.ndarray,
    ) -> None:
        """:meth:`learn_many` of model indexes (``labels`` and ``weights`` as float32
        arrays are used as they are)."""
        before = self._before
        for position in positions:
            if position not in before:
                # A scalar and a row copy: a third of the cost of one concatenated row,
                # paid by most sampled negatives.
                before[position] = (self.item_bias[position], self.item_factors[position].copy())
        user_vec = self.user_factors.get(user)
        if user_vec is None:
            user_vec = stable_vector(user, self.n_factors, self.init_std, self.seed)
        step = sgd_step if self.words is None else self.words.step
        index = np.array(positions, dtype=np.int64)
        prior = self.freshness
        if prior is not None:
            # The prior joins the items' biases for the step, which moves it too.
            saved = prior.before_step(self.item_bias, index)
        self.user_factors[user] = step(
            self.item_factors,
            self.item_bias,
            user_vec,
            index,
            np.asarray(labels, dtype=np.float32),
            np.asarray(weights, dtype=np.float32),
            self.learning_rate,
            self.l2,
        )
        if prior is not None:
            prior.after_step(self.item_bias, index, saved, self.learning_rate)

    def drain_deltas(self) -> dict[str, tuple[bytes, bytes | None]]:
        """What learning changed since the last drain, as commutative increments of the
        stored item rows (``[index, bias, factors...]``, packed little-endian float32):
        ``{item: (delta, base)}``, ``base`` the row of an item created since then (its
        initial vector: the same on every worker, except a start from content neighbours,
        which depends on what the worker knew; the first base stored wins), else None.

        The local rows are rounded to what the store computes (``float32(stored + delta)``
        in double precision), so a single writer's memory and store stay bit-identical."""
        deltas: dict[str, tuple[bytes, bytes | None]] = {}
        if not self._before:
            return deltas
        positions = np.fromiter(self._before, dtype=np.int64, count=len(self._before))
        before = np.empty((len(positions), self.n_factors + 1), dtype=np.float32)
        before[:, 0] = [bias for bias, _ in self._before.values()]
        before[:, 1:] = [row for _, row in self._before.values()]
        after = np.empty_like(before)
        after[:, 0] = self.item_bias[positions]
        after[:, 1:] = self.item_factors[positions]
        delta = np.zeros((len(positions), self.n_factors + 2), dtype="<f4")
        delta[:, 1:] = after - before
        stored = (before.astype(np.float64) + delta[:, 1:]).astype(np.float32)
        self.item_bias[positions] = stored[:, 0]
        self.item_factors[positions] = stored[:, 1:]
        created = self._created
        ids = self.item_ids
        for row, position in enumerate(positions.tolist()):
            base = None
            if position in created:
                base = np.concatenate(([np.float32(position)], before[row])).astype("<f4").tobytes()
            deltas[ids[position]] = (delta[row].tobytes(), base)
        self._before, self._created = {}, set()
        return deltas

    def score_all(self, user: str) -> np.ndarray:
        """Logits of every known item (index order of ``item_ids``)."""
        count = len(self.item_ids)
        user_vec = self.user_vector(user)
        scores = self.item_factors[:count] @ user_vec + self.item_bias[:count]
        if self.words is not None:
            factors, bias = self.words.item_part(count)
            scores += factors @ user_vec + bias
        if self.freshness is not None:
            scores += self.freshness.item_part(count)
        return scores

    # --- plain state (no pickles) ------------------------------------------------------------
    def item_row(self, item: str) -> bytes:
        """The stored row of one item: ``[index, bias, factors...]`` as packed little-endian
        float32. The index (exact below 2**24 items) lets a restore keep the item order
        that negative sampling and tie-breaks depend on."""
        index = self.item_index[item]
        row = np.empty(self.n_factors + 2, dtype="<f4")
        row[0], row[1] = index, self.item_bias[index]
        row[2:] = self.item_factors[index]
        return row.tobytes()

    def set_item_row(self, item: str, row: bytes) -> None:
        """Set one item's bias and factors from its stored row (adding the item when new:
        call in ascending stored index order to rebuild the original order). Changes made
        by learning since the last drain would be lost: call it between drains."""
        values = self._checked_row(row)
        index = self.add_item(item)
        self._created.discard(index)
        self.item_bias[index] = values[1]
        self.item_factors[index] = values[2:]

    def set_item_rows(self, items: list[str], rows: list[bytes]) -> None:
        """:meth:`set_item_row` of many known items at once (the per-batch refresh)."""
        values = np.frombuffer(b"".join(rows), dtype="<f4")
        if len(values) != len(rows) * (self.n_factors + 2) or any(r[:1] == b"{" for r in rows):
            for item, row in zip(items, rows, strict=True):
                self.set_item_row(item, row)  # raises the clear error of the bad row
            return
        matrix = values.reshape(len(rows), self.n_factors + 2)
        positions = np.array([self.item_index[item] for item in items], dtype=np.int64)
        self.item_bias[positions] = matrix[:, 1]
        self.item_factors[positions] = matrix[:, 2:]
        self._created.difference_update(positions.tolist())

    def _checked_row(self, row: bytes) -> np.ndarray:
        if row[:1] == b"{":
            raise ValueError(
                "stored item factors are JSON (the format before item rows were packed "
                "float32): delete the {prefix}:mf:items key or use another PIPELINE_KEY_PREFIX"
            )
        values = np.frombuffer(row, dtype="<f4").astype(np.float32)
        self._checked(values[2:])
        return values

    @staticmethod
    def row_index(row: bytes) -> float:
        """The stored index of a row (the order a restore adds items in)."""
        return float(np.frombuffer(row[:4], dtype="<f4")[0])

    def _checked(self, vector: np.ndarray) -> np.ndarray:
        if len(vector) != self.n_factors:
            raise ValueError(
                f"stored vectors have {len(vector)} factors but the model has {self.n_factors} "
                "(PIPELINE_MF_FACTORS changed?): use another PIPELINE_KEY_PREFIX or delete the "
                "personal keys"
            )
        return vector

    def user_state(self, user: str) -> str | None:
        vector = self.user_factors.get(user)
        return None if vector is None else encode_vector(vector)

    def set_user_state(self, user: str, state: str | bytes) -> None:
        self.user_factors[user] = self._checked(decode_vector(state))
