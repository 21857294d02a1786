"""Personalised ranking (Amazon PERSONALIZED_RANKING): a click model learned from impressions.

:class:`ClickModel` is an online logistic regression over hashed binary features, written to
River's estimator contract (hyperparameters are ``__init__`` arguments stored under the same
names, ``clone``, ``learn_one``, ``predict_proba_one``, ``rank``) rather than subclassing it.

How it learns (:func:`~pipeline.features.ranking.features.observations`): every item of an impression is a weak negative
(``impression_weight``) at its display position; a click is a positive at the position the
click's ``context["position"]`` names. The clicked item also had its impression, so the odds
the model fits are ``CTR / impression_weight``: the log-odds are ``log P(examined | position)
+ log P(relevant | user, item, context) + constant``, additive, which is exactly what a
logistic model with one position feature can represent (the examination hypothesis). At
ranking time the position is left out (``position=None``), so the learned position bias is
factored out and items are ordered by relevance, not by where they happened to be shown.

Weights live in a sparse ``dict`` of hashed index -> float (:meth:`ClickModel.set_weights`,
:meth:`ClickModel.drain_deltas`). The agent keeps no weights between batches: it gathers a
batch's observations (:class:`StepBatch`), reads the weights and sums of the indexes they
touch, steps them as arrays (:meth:`ClickModel.learn_batch`) and writes what moved (see
agent.py). Indexes come from a stable hash (CRC-32 salted by ``seed``), so every process maps
a feature to the same index.

This module is pure: the standard library, numpy and the compiled learning loop.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.features.ranking.features import features
from pipeline.features.ranking.hashing import FeatureIndexer, IndexedBatch
from pipeline.features.ranking.kernels import adagrad_steps, distinct_slots

# Logits are clipped before exp(): beyond this the probability is 0 or 1 in float64 anyway.
MAX_LOGIT = 35.0


def _sigmoid(logit: float) -> float:
    if logit > MAX_LOGIT:
        logit = MAX_LOGIT
    elif logit < -MAX_LOGIT:
        logit = -MAX_LOGIT
    return 1.0 / (1.0 + math.exp(-logit))


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """Everything that defines the click model; the agent and the reader must agree on it
    (settings ``ranking_*``, built by ``config.ranking_config``).

    Changing ``n_bits`` or ``seed`` changes every feature's index: the stored weight table
    no longer fits and must be dropped (or written under another key prefix).
    """

    n_bits: int
    learning_rate: float
    l2: float
    seed: int
    impression_weight: float
    click_weight: float

    def model(self) -> ClickModel:
        return ClickModel(self.n_bits, self.learning_rate, self.l2, self.seed)


@dataclass(frozen=True)
class StepBatch:
    """A batch of ``(indexes, clicked, weight)`` observations gathered for the compiled
    loop: its distinct feature indexes (ascending) and, per observation, slots into them."""

    present: np.ndarray  # the distinct feature indexes, ascending (int64)
    slots: np.ndarray  # each observation's features as positions in ``present``, concatenated
    offsets: np.ndarray  # observation ``o``'s slots are ``slots[offsets[o]:offsets[o + 1]]``
    clicked: np.ndarray  # 1.0 or 0.0 per observation
    weights: np.ndarray  # each observation's weight

    @classmethod
    def of(
        cls, steps: Sequence[tuple[Sequence[int], bool, float]], table: np.ndarray | None = None
    ) -> StepBatch:
        """The batch of ``steps``; with ``table`` (int32, -1 for every index the model can
        hash to: ``kernels.distinct_slots``) its slots are found without sorting them all."""
        lengths = np.fromiter((len(indexes) for indexes, _, _ in steps), np.int64, len(steps))
        offsets = np.zeros(len(steps) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter(
            itertools.chain.from_iterable(indexes for indexes, _, _ in steps),
            np.int64,
            int(offsets[-1]),
        )
        clicked = np.fromiter((1.0 if clicked else 0.0 for _, clicked, _ in steps), np.float64)
        weights = np.fromiter((weight for _, _, weight in steps), np.float64)
        return cls.of_indexed(IndexedBatch(flat, offsets, clicked, weights), table)

    @classmethod
    def of_indexed(cls, indexed: IndexedBatch, table: np.ndarray | None = None) -> StepBatch:
        """The batch of the observations in ``indexed`` (``table``: as for :meth:`of`)."""
        if table is None:
            present, slots = np.unique(indexed.flat, return_inverse=True)
        else:
            present, slots = distinct_slots(indexed.flat, table)
        return cls(
            present,
            slots.astype(np.int64, copy=False),
            indexed.offsets,
            indexed.clicked,
            indexed.weights,
        )

    @property
    def indexes(self) -> list[int]:
        return self.present.tolist()


@dataclass(frozen=True)
class MovedFeatures:
    """The features a batch moved: their indexes, and their weights and sums before and
    after."""

    indexes: list[int]
    weights_before: list[float]
    sums_before: list[float]
    weights: list[float]
    sums: list[float]


class ClickModel:
    """Online logistic regression over hashed binary features (River-style classifier).

    ``x`` is either a mapping of feature name -> value (River's convention) or an iterable
    of names, each with value 1. ``predict_proba_one`` returns P(click) as a float (River's
    classifiers return ``{True: p, False: 1 - p}``; a ranker only ever needs the float).

    Each step on ``(x, y, weight)`` with ``p = sigmoid(sum w_i x_i)`` is AdaGrad: the gradient
    ``g_i = weight * (y - p) * x_i`` adds ``g_i**2`` to the feature's sum of squares ``n_i``
    and moves ``w_i`` by ``learning_rate * g_i / sqrt(n_i) - learning_rate * l2 * w_i`` (the
    per-coordinate rates of click-through models in production; a rare feature keeps long
    steps, a frequent one converges). L2 is applied lazily, to touched weights only, so a
    step costs O(features), not O(2**n_bits). The sums of squares are state like the
    weights (:meth:`set_sums`, :meth:`drain_sum_deltas`).
    """

    def __init__(
        self, n_bits: int = 20, learning_rate: float = 0.05, l2: float = 1e-6, seed: int = 42
    ) -> None:
        if not 1 <= n_bits <= 31:
            raise ValueError("n_bits must lie in 1-31")
        self.n_bits = n_bits
        self.learning_rate = learning_rate
        self.l2 = l2
        self.seed = seed
        self._mask = (1 << n_bits) - 1
        # CRC-32's starting value salts the hash; 32 bits of the seed.
        self._salt = seed & 0xFFFFFFFF
        self._weights: dict[int, float] = {}
        # AdaGrad's sum of squared gradients per index (sets each index's step size).
        self._sumsq: dict[int, float] = {}
        # Value of each weight (and its sum) when it first changed since the last drain.
        self._base: dict[int, float] = {}
        self._base_sumsq: dict[int, float] = {}

    # --- River contract ----------------------------------------------------------------------
    def _get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("n_bits", "learning_rate", "l2", "seed")}

    def clone(self) -> ClickModel:
        """A fresh, untrained model with the same hyperparameters."""
        return ClickModel(**self._get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"ClickModel({params})"

    # --- hashing -----------------------------------------------------------------------------
    def index(self, name: str) -> int:
        """The weight index of one feature: stable across processes, runs and platforms."""
        return zlib.crc32(name.encode(), self._salt) & self._mask

    def indexes(self, names: Iterable[str]) -> list[int]:
        crc32, salt, mask = zlib.crc32, self._salt, self._mask
        return [crc32(name.encode(), salt) & mask for name in names]

    def _encode(
        self, x: Mapping[str, float] | Iterable[str]
    ) -> tuple[list[int], list[float] | None]:
        if isinstance(x, Mapping):
            return self.indexes(x.keys()), [float(v) for v in x.values()]
        return self.indexes(x), None

    @property
    def salt(self) -> int:
        """The CRC-32 starting value that salts feature hashes."""
        return self._salt

    def indexer(self) -> FeatureIndexer:
        """Computes this model's feature indexes fast (``hashing.py``)."""
        return FeatureIndexer(self._salt, self.n_bits)

    # --- learning and predicting --------------------------------------------------------------
    def logit_indexes(self, indexes: Sequence[int], values: Sequence[float] | None = None) -> float:
        weights = self._weights
        logit = 0.0
        if values is None:
            for i in indexes:
                logit += weights.get(i, 0.0)
        else:
            for i, v in zip(indexes, values, strict=True):
                logit += weights.get(i, 0.0) * v
        return logit

    def proba_indexes(self, indexes: Sequence[int], values: Sequence[float] | None = None) -> float:
        return _sigmoid(self.logit_indexes(indexes, values))

    def learn_indexes(
        self,
        indexes: Sequence[int],
        y: bool,
        weight: float = 1.0,
        values: Sequence[float] | None = None,
    ) -> float:
        """One AdaGrad step on hashed features; returns P(click) predicted *before* the step.

        With ``g_i = weight * (y - p) * x_i``: ``n_i += g_i**2``, then
        ``w_i += learning_rate * g_i / sqrt(n_i) - learning_rate * l2 * w_i``.
        """
        p = self.proba_indexes(indexes, values)
        error = weight * ((1.0 if y else 0.0) - p)
        if values is None:
            self._step(indexes, error)
        else:
            for i, v in zip(indexes, values, strict=True):
                self._step((i,), error * v)
        return p

    def _step(self, indexes: Iterable[int], gradient: float) -> None:
        """The AdaGrad update of ``indexes`` that all have ``gradient`` (see learn_many)."""
        if gradient == 0.0:
            return
        weights, base, sumsq, base_sumsq = self._weights, self._base, self._sumsq, self._base_sumsq
        rate = self.learning_rate
        shrink = rate * self.l2
        squared = gradient * gradient
        for i in indexes:
            old = weights.get(i, 0.0)
            if i not in base:
                base[i] = old
            total = sumsq.get(i, 0.0)
            if i not in base_sumsq:
                base_sumsq[i] = total
            total += squared
            sumsq[i] = total
            weights[i] = old + rate * gradient / math.sqrt(total) - shrink * old

    def learn_many(self, steps: Iterable[tuple[Sequence[int], bool, float]]) -> None:
        """:meth:`learn_indexes` on each ``(indexes, clicked, weight)`` observation, in order.

        Sequential steps, each seeing the weights the previous one left, so how much the
        model learns depends on the observations, not on how the broker cut them into
        batches. AdaGrad's per-feature step (``rate / sqrt(sum of squared gradients)``)
        shrinks as a feature accumulates evidence, so the last few hundred observations
        (one user's backlog read before another's, say) cannot swing a well-known feature:
        the model ends near the same weights in whatever order it saw the events.
        """
        steps = steps if isinstance(steps, list) else list(steps)
        if not steps:
            return
        batch = StepBatch.of(steps)
        get_weight, get_sum = self._weights.get, self._sumsq.get
        indexes = batch.indexes
        start_weights = np.array([get_weight(i, 0.0) for i in indexes], dtype=np.float64)
        start_sums = np.array([get_sum(i, 0.0) for i in indexes], dtype=np.float64)
        moved = self.learn_batch(batch, start_weights, start_sums)
        base, base_sumsq = self._base, self._base_sumsq
        for i, old, old_sum, new, new_sum in zip(
            moved.indexes,
            moved.weights_before,
            moved.sums_before,
            moved.weights,
            moved.sums,
            strict=True,
        ):
            base.setdefault(i, old)
            base_sumsq.setdefault(i, old_sum)
            self._weights[i] = new
            self._sumsq[i] = new_sum

    def learn_batch(self, batch: StepBatch, weights: np.ndarray, sums: np.ndarray) -> MovedFeatures:
        """Step ``batch``'s observations in order from ``weights`` and ``sums`` (float64, one
        per ``batch.indexes``), which are updated in place; this model's own tables are not
        read or changed (for a learner whose tables are elsewhere: the ranking agent's are in
        Redis). Returns the features that moved."""
        start_weights, start_sums = weights.copy(), sums.copy()
        adagrad_steps(
            weights,
            sums,
            batch.slots,
            batch.offsets,
            batch.clicked,
            batch.weights,
            self.learning_rate,
            self.learning_rate * self.l2,
            MAX_LOGIT,
        )
        # A feature moved when its sum grew or its weight changed (a gradient too small to
        # grow a large sum still moves the weight, by its step and the L2 shrink).
        slots = np.flatnonzero((sums != start_sums) | (weights != start_weights))
        return MovedFeatures(
            batch.present[slots].tolist(),
            start_weights[slots].tolist(),
            start_sums[slots].tolist(),
            weights[slots].tolist(),
            sums[slots].tolist(),
        )

    def learn_one(
        self, x: Mapping[str, float] | Iterable[str], y: bool, weight: float = 1.0
    ) -> ClickModel:
        """Learn that ``x`` was (``y=True``) or was not clicked. Returns self, like River."""
        indexes, values = self._encode(x)
        self.learn_indexes(indexes, y, weight, values)
        return self

    def predict_proba_one(self, x: Mapping[str, float] | Iterable[str]) -> float:
        """P(click | x) in (0, 1)."""
        indexes, values = self._encode(x)
        return self.proba_indexes(indexes, values)

    def predict_one(self, x: Mapping[str, float] | Iterable[str]) -> bool:
        return self.predict_proba_one(x) > 0.5

    def rank(
        self,
        user_id: str,
        item_ids: Sequence[str],
        categories_of_item: Mapping[str, Sequence[str]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """``(item_id, P(click))`` best first, ties in input order; no position feature."""
        categories_of_item = categories_of_item or {}
        context = context or {}
        scored = []
        for item_id in item_ids:
            names = features(user_id, item_id, categories_of_item.get(item_id, ()), context, None)
            scored.append((item_id, self.proba_indexes(self.indexes(names))))
        # sorted() is stable: equal scores keep the input order.
        return sorted(scored, key=lambda pair: -pair[1])

    # --- state: plain numbers, no pickles ------------------------------------------------------
    def weights_for(self, indexes: Iterable[int]) -> list[float]:
        """Current weights of ``indexes`` (0.0 for never-set ones)."""
        weights = self._weights
        return [weights.get(i, 0.0) for i in indexes]

    def set_weights(self, mapping: Mapping[int, float]) -> None:
        """Overwrite weights (e.g. loaded from Redis). Not a change: no delta is recorded,
        and a later delta of these indexes is measured from the value set here."""
        weights, base = self._weights, self._base
        for i, value in mapping.items():
            weights[i] = float(value)
            base.pop(i, None)

    def set_sums(self, mapping: Mapping[int, float]) -> None:
        """Overwrite AdaGrad's sums of squared gradients, like :meth:`set_weights`."""
        sumsq, base = self._sumsq, self._base_sumsq
        for i, value in mapping.items():
            sumsq[i] = float(value)
            base.pop(i, None)

    def drain_deltas(self) -> dict[int, float]:
        """``{index: change}`` of every weight changed since the last drain; resets tracking.

        Adding the deltas to the weights this model started from gives its weights now (a
        model trained from zero drains its weights exactly). Zero changes are left out.
        """
        weights, base = self._weights, self._base
        deltas = {i: weights[i] - old for i, old in base.items() if weights[i] != old}
        self._base = {}
        return deltas

    def drain_sum_deltas(self) -> dict[int, float]:
        """:meth:`drain_deltas` of AdaGrad's sums of squared gradients."""
        sumsq = self._sumsq
        deltas = {i: sumsq[i] - old for i, old in self._base_sumsq.items() if sumsq[i] != old}
        self._base_sumsq = {}
        return deltas

    @property
    def weights(self) -> dict[int, float]:
        """A copy of every weight this model holds (sparse)."""
        return dict(self._weights)
