"""Personalised ranking (Amazon PERSONALIZED_RANKING): a click model learned from impressions.

:class:`ClickModel` is an online logistic regression over hashed binary features, written to
River's estimator contract (hyperparameters are ``__init__`` arguments stored under the same
names, ``clone``, ``learn_one``, ``predict_proba_one``, ``rank``) rather than subclassing it.

How it learns (:func:`observations`): every item of an impression is a weak negative
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

This module is pure: numpy and the standard library, no redis, no faust.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Context key of a click that carries the display position of the clicked item; it is the
# position feature, never a context feature.
POSITION_KEY = "position"
# Context key crossed with each category (category x device).
DEVICE_KEY = "device"
# Positions below this get a feature each; later ones share power-of-two buckets.
EXACT_POSITIONS = 10
# Small non-negative whole numbers in the context keep their value; others are bucketed.
EXACT_NUMBERS = 16
# Logits are clipped before exp(): beyond this the probability is 0 or 1 in float64 anyway.
MAX_LOGIT = 35.0


def _number_bucket(value: float) -> str:
    """Small whole numbers as themselves, others as sign and power-of-two magnitude."""
    if not math.isfinite(value):
        return "nan"
    if 0 <= value < EXACT_NUMBERS and value == int(value):
        return str(int(value))
    # frexp: |value| lies in [2**(e-1), 2**e).
    exponent = math.frexp(abs(value))[1]
    return f"{'-' if value < 0 else '+'}2^{exponent}"


def position_bucket(position: int) -> str:
    """Display position (0 = first) to its feature value: exact up to 9, then buckets."""
    if position < EXACT_POSITIONS:
        return str(position)
    return f"2^{math.frexp(position)[1]}"


def context_features(context: Mapping[str, Any]) -> list[str]:
    """Features of the request context: one per string or number value.

    ``ctx:{key}={value}`` for strings, ``ctx:{key}#{bucket}`` for numbers (see
    :func:`_number_bucket`). The ``position`` key is skipped: it is the position feature.
    Other values (lists, objects, None) are ignored. A key containing ``=`` or ``#`` may
    alias another key's name: at worst one more hash collision.
    """
    out: list[str] = []
    for key, value in context.items():
        if key == POSITION_KEY:
            continue
        if isinstance(value, str):
            out.append(f"ctx:{key}={value}")
        elif isinstance(value, int | float):
            out.append(f"ctx:{key}#{_number_bucket(float(value))}")
    return out


def _device(context: Mapping[str, Any]) -> str | None:
    device = context.get(DEVICE_KEY)
    if isinstance(device, str):
        return device
    if isinstance(device, int | float):
        return _number_bucket(float(device))
    return None


def features(
    user_id: str,
    item_id: str,
    categories: Sequence[str],
    context: Mapping[str, Any],
    position: int | None,
) -> list[str]:
    """The binary features of showing ``item_id`` to ``user_id`` (names, before hashing).

    In order:

    - ``bias``;
    - ``item={item_id}``;
    - ``cat={category}`` for each catalog category of the item;
    - ``user_cat={user_id}|{category}`` for each category (a user's taste for a category);
    - ``user_item={user_id}|{item_id}``;
    - the context features of :func:`context_features` (device, page, locale, ...);
    - ``cat_device={category}|{device}`` for each category when the context has a device;
    - ``pos={bucket}`` when ``position`` is not None (training only; see the module doc).

    Ids never contain ``|`` (``pipeline.events.ID_PATTERN``), so the crossed names are
    unambiguous. The function is pure: same arguments, same list.
    """
    out = ["bias", f"item={item_id}", f"user_item={user_id}|{item_id}"]
    for category in categories:
        out.append(f"cat={category}")
        out.append(f"user_cat={user_id}|{category}")
    if context:
        out.extend(context_features(context))
        device = _device(context)
        if device is not None:
            out.extend(f"cat_device={category}|{device}" for category in categories)
    if position is not None:
        out.append(f"pos={position_bucket(position)}")
    return out


def click_position(context: Mapping[str, Any]) -> int | None:
    """The display position a click's context carries (0 = first), or None if absent/bad."""
    value = context.get(POSITION_KEY)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


Observation = tuple[list[str], bool, float]


def observations(
    event: Any,
    categories_of_item: Mapping[str, Sequence[str]],
    impression_weight: float = 0.3,
    click_weight: float = 1.0,
) -> list[Observation]:
    """What one event teaches the click model: ``(features, clicked, weight)`` triples.

    An ``impression`` gives every shown item ``clicked=False`` with ``impression_weight`` at
    its display position (index in ``event.items``, 0 = first). A ``click`` gives its item
    ``clicked=True`` with ``click_weight`` at ``context["position"]`` (None when missing).
    Other event types teach nothing. ``event`` is a :class:`pipeline.events.Event` (any
    object with ``event_type``, ``user_id``, ``item_id``, ``items`` and ``context``); items
    missing from ``categories_of_item`` have no categories.
    """
    kind = event.event_type
    context = event.context or {}
    if kind == "impression":
        if impression_weight <= 0:
            return []
        return [
            (
                features(event.user_id, item_id, categories_of_item.get(item_id, ()), context, p),
                False,
                impression_weight,
            )
            for p, item_id in enumerate(event.items)
        ]
    if kind == "click" and event.item_id is not None and click_weight > 0:
        item_id = event.item_id
        names = features(
            event.user_id,
            item_id,
            categories_of_item.get(item_id, ()),
            context,
            click_position(context),
        )
        return [(names, True, click_weight)]
    return []


def _sigmoid(logit: float) -> float:
    if logit > MAX_LOGIT:
        logit = MAX_LOGIT
    elif logit < -MAX_LOGIT:
        logit = -MAX_LOGIT
    return 1.0 / (1.0 + math.exp(-logit))


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """Everything that defines the click model; the agent and the reader must agree on it.

    Changing ``n_bits`` or ``seed`` changes every feature's index: the stored weight table
    no longer fits and must be dropped (or written under another key prefix).
    """

    n_bits: int = 20
    learning_rate: float = 0.05
    l2: float = 1e-6
    seed: int = 42
    impression_weight: float = 0.3
    click_weight: float = 1.0

    def model(self) -> ClickModel:
        return ClickModel(self.n_bits, self.learning_rate, self.l2, self.seed)


def ranking_config(settings: Any) -> RankingConfig:
    """The config from ``settings`` (its ``ranking_{field}`` fields)."""
    return RankingConfig(
        **{
            name: getattr(settings, f"ranking_{name}")
            for name in RankingConfig.__dataclass_fields__
        }
    )


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

    # --- learning and predicting --------------------------------------------------------------
    def logit_indexes(self, indexes: Sequence[int], values: Sequence[float] | None = None) -> float:
        weights = self._weights
        if values is None:
            return sum(weights.get(i, 0.0) for i in indexes)
        return sum(weights.get(i, 0.0) * v for i, v in zip(indexes, values, strict=True))

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


def benchmark(
    n_events: int = 2000, items_per_impression: int = 10, seed: int = 0
) -> dict[str, float]:
    """Microseconds per impression event and per click, features to SGD step (no Redis).

    ``python -c "from pipeline.ranking import benchmark; print(benchmark())"``
    """
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    categories = {f"i{n}": [f"c{n % 20}", f"c{n % 7 + 20}"] for n in range(1000)}
    context = {"device": "mobile", "page": "home", "locale": "de-DE"}
    impressions = [
        SimpleNamespace(
            event_type="impression",
            user_id=f"u{rng.integers(500)}",
            item_id=None,
            items=tuple(f"i{k}" for k in rng.integers(0, 1000, items_per_impression)),
            context=context,
        )
        for _ in range(n_events)
    ]
    clicks = [
        SimpleNamespace(
            event_type="click",
            user_id=e.user_id,
            item_id=e.items[0],
            items=(),
            context={**context, "position": 0},
        )
        for e in impressions
    ]
    model = ClickModel()
    out = {}
    for name, events in (("impression_us", impressions), ("click_us", clicks)):
        started = time.perf_counter()
        for event in events:
            for names, y, weight in observations(event, categories):
                model.learn_indexes(model.indexes(names), y, weight)
        out[name] = (time.perf_counter() - started) / len(events) * 1e6
    started = time.perf_counter()
    model.drain_deltas()
    out["drain_us_per_event"] = (time.perf_counter() - started) / (2 * n_events) * 1e6
    return out
