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

Weights live in a sparse ``dict`` of hashed index -> float. The agent keeps no weights
between batches: it loads the indexes a batch touches (:meth:`ClickModel.set_weights`),
learns, and writes :meth:`ClickModel.drain_deltas` as increments, which commute, so several
workers can share one weight table. Indexes come from a stable hash (CRC-32 salted by
``seed``), so every process maps a feature to the same index.

This module is pure: numpy and the standard library.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from pipeline.features.ranking.features import features
from pipeline.features.ranking.hashing import FeatureIndexer

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


class ClickModel:
    """Online logistic regression over hashed binary features (River-style classifier).

    ``x`` is either a mapping of feature name -> value (River's convention) or an iterable
    of names, each with value 1. ``predict_proba_one`` returns P(click) as a float (River's
    classifiers return ``{True: p, False: 1 - p}``; a ranker only ever needs the float).

    Each SGD step on ``(x, y, weight)`` with ``p = sigmoid(sum w_i x_i)`` moves every touched
    weight by ``learning_rate * (weight * (y - p) * x_i - l2 * w_i)``; L2 is applied lazily,
    to touched weights only, so a step costs O(features), not O(2**n_bits).
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
        # Value of each weight when it first changed since the last drain_deltas().
        self._base: dict[int, float] = {}

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
        """One SGD step on hashed features; returns P(click) predicted *before* the step."""
        p = self.proba_indexes(indexes, values)
        step = self.learning_rate * weight * ((1.0 if y else 0.0) - p)
        shrink = self.learning_rate * self.l2
        weights, base = self._weights, self._base
        if values is None:
            for i in indexes:
                old = weights.get(i, 0.0)
                if i not in base:
                    base[i] = old
                weights[i] = old + step - shrink * old
        else:
            for i, v in zip(indexes, values, strict=True):
                old = weights.get(i, 0.0)
                if i not in base:
                    base[i] = old
                weights[i] = old + step * v - shrink * old
        return p

    def learn_batch(self, steps: Sequence[tuple[Sequence[int], bool, float]]) -> None:
        """One mini-batch step on ``(indexes, clicked, weight)`` observations.

        Every observation is predicted with the weights as they were before the batch, and
        each weight it touches moves by the mean of its observations' gradients, minus its
        L2 shrink: ``w += rate * mean(weight * (y - p)) - rate * l2 * w``. The mean (rather
        than the sum) keeps a feature that every observation has (the bias, a position) from
        taking a step a thousand times too long; a feature seen once moves as in
        :meth:`learn_indexes`. Vectorised, so a batch costs little more than its hashing.
        """
        if not steps:
            return
        lengths = np.fromiter((len(indexes) for indexes, _, _ in steps), np.int64, len(steps))
        flat = np.fromiter(
            chain.from_iterable(indexes for indexes, _, _ in steps), np.int64, int(lengths.sum())
        )
        touched, local = np.unique(flat, return_inverse=True)
        weights = self._weights
        current = np.array([weights.get(i, 0.0) for i in touched.tolist()])
        owner = np.repeat(np.arange(len(steps)), lengths)
        logits = np.bincount(owner, current[local], minlength=len(steps))
        predicted = 1.0 / (1.0 + np.exp(-np.clip(logits, -MAX_LOGIT, MAX_LOGIT)))
        target = np.fromiter(
            (1.0 if clicked else 0.0 for _, clicked, _ in steps), float, len(steps)
        )
        weight = np.fromiter((w for _, _, w in steps), float, len(steps))
        gradient = weight * (target - predicted)
        sums = np.bincount(local, gradient[owner], minlength=len(touched))
        counts = np.bincount(local, minlength=len(touched))
        rate = self.learning_rate
        moved = current + rate * sums / counts - rate * self.l2 * current
        base = self._base
        for i, old, new in zip(touched.tolist(), current.tolist(), moved.tolist(), strict=True):
            if i not in base:
                base[i] = old
            weights[i] = new

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

    def drain_deltas(self) -> dict[int, float]:
        """``{index: change}`` of every weight changed since the last drain; resets tracking.

        Adding the deltas to the weights this model started from gives its weights now (a
        model trained from zero drains its weights exactly). Zero changes are left out.
        """
        weights, base = self._weights, self._base
        deltas = {i: weights[i] - old for i, old in base.items() if weights[i] != old}
        self._base = {}
        return deltas

    @property
    def weights(self) -> dict[int, float]:
        """A copy of every weight this model holds (sparse)."""
        return dict(self._weights)
