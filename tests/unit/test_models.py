"""River-style contract checks of the models: ImplicitMF, the Engine, and related-items logic.

Nothing here needs a server: the models are plain classes, fed plain events.
"""

from __future__ import annotations

import inspect
import pickle
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.engine import Engine, EngineConfig, engine_config
from pipeline.events import Event, event_from_dict
from pipeline.history import UserHistory, is_conversion
from pipeline.personal import ImplicitMF
from pipeline.related import (
    CONVERSION_TYPES,
    RELATIONS,
    RelatedConfig,
    blend_related,
    co_occurrences,
    rank_related,
    trim,
)
from pipeline.settings import load_settings
from pipeline.synthetic import SyntheticConfig, SyntheticWorld

T0 = 1_767_225_600_000
USERS = [f"user-{u}" for u in range(6)]
ITEMS = [f"item-{i}" for i in range(12)]


def make_event(kind: str, user: str, item: str | None = None, t: int = 0, **fields) -> Event:
    raw = {"event_id": f"e{t}", "type": kind, "user_id": user, "timestamp": T0 + t, **fields}
    if item is not None:
        raw["item_id"] = item
    return event_from_dict(raw)


def training_data(n: int = 400, seed: int = 0) -> list[tuple[str, str, float]]:
    """(user, item, label): two taste groups, so the model has structure to find."""
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(n):
        user = int(rng.integers(len(USERS)))
        liked = ITEMS[: len(ITEMS) // 2] if user % 2 else ITEMS[len(ITEMS) // 2 :]
        item = liked[int(rng.integers(len(liked)))]
        data.append((USERS[user], item, 1.0))
    return data


def fit(model: ImplicitMF, data: list[tuple[str, str, float]]) -> ImplicitMF:
    for user, item, label in data:
        model.learn_one(user, item, label)
    return model


def predictions(model: ImplicitMF) -> np.ndarray:
    return np.array([[model.predict_one(user, item) for item in ITEMS] for user in USERS])


# --- ImplicitMF: River's estimator contract ------------------------------------------------

PARAMS = {
    "n_factors": 8,
    "learning_rate": 0.07,
    "l2": 0.01,
    "n_negatives": 3,
    "negative_weight": 0.5,
    "init_std": 0.2,
    "seed": 5,
}


def test_params_are_stored_under_init_names():
    names = [name for name in inspect.signature(ImplicitMF.__init__).parameters if name != "self"]
    assert sorted(names) == sorted(PARAMS)
    model = ImplicitMF(**PARAMS)
    for name, value in PARAMS.items():
        assert getattr(model, name) == value
    assert model._get_params() == PARAMS


def test_clone_has_equal_params_and_no_state():
    model = fit(ImplicitMF(**PARAMS), training_data(50))
    clone = model.clone()
    assert clone is not model
    assert clone._get_params() == model._get_params()
    assert clone.item_ids == [] and clone.user_factors == {}
    # A clone learns exactly what a fresh model with the same params learns.
    data = training_data(100, seed=1)
    np.testing.assert_array_equal(
        predictions(fit(clone, data)), predictions(fit(ImplicitMF(**PARAMS), data))
    )


def test_same_seed_same_factors_and_predictions():
    data = training_data()
    first, second = fit(ImplicitMF(seed=3), data), fit(ImplicitMF(seed=3), data)
    assert first.item_ids == second.item_ids
    count = len(first.item_ids)
    np.testing.assert_array_equal(first.item_factors[:count], second.item_factors[:count])
    np.testing.assert_array_equal(first.item_bias[:count], second.item_bias[:count])
    assert first.user_factors.keys() == second.user_factors.keys()
    for user, vector in first.user_factors.items():
        np.testing.assert_array_equal(vector, second.user_factors[user])
    np.testing.assert_array_equal(predictions(first), predictions(second))


def test_different_seeds_differ():
    data = training_data()
    first, second = fit(ImplicitMF(seed=3), data), fit(ImplicitMF(seed=4), data)
    count = len(first.item_ids)
    assert not np.allclose(first.item_factors[:count], second.item_factors[:count])
    assert not np.allclose(predictions(first), predictions(second))


def test_positives_raise_the_prediction():
    model = fit(ImplicitMF(seed=1), training_data(200))
    user, item = "user-new", ITEMS[0]
    before = model.predict_one(user, item)
    for _ in range(5):
        model.learn_one(user, item, 1.0)
    assert model.predict_one(user, item) > before
    assert 0.0 < model.predict_one(user, item) < 1.0


def test_negative_lowers_the_prediction():
    model = fit(ImplicitMF(seed=1), training_data(200))
    user, item = USERS[1], ITEMS[0]
    before = model.predict_one(user, item)
    for _ in range(5):
        model.learn_one(user, item, 0.0)
    assert model.predict_one(user, item) < before


def test_unknown_item_predicts_zero():
    model = fit(ImplicitMF(), training_data(20))
    assert model.predict_one(USERS[0], "item-never-seen") == 0.0


@given(st.lists(st.sampled_from(ITEMS), max_size=len(ITEMS), unique=True), st.sampled_from(USERS))
@settings(max_examples=50, deadline=None)
def test_rank_is_a_permutation_sorted_by_predict_one(items, user):
    model = fit(ImplicitMF(seed=2), training_data(150))
    ranked = model.rank(user, items)
    assert sorted(ranked) == sorted(items)
    scores = [model.predict_one(user, item) for item in ranked]
    assert scores == sorted(scores, reverse=True)


def test_snapshot_round_trip():
    """Copying every item/user state into a fresh model reproduces every prediction."""
    model = fit(ImplicitMF(**PARAMS), training_data())
    fresh = model.clone()
    for item in model.item_ids:
        fresh.set_item_state(item, model.item_state(item))
    for user in model.user_factors:
        state = model.user_state(user)
        assert state is not None
        fresh.set_user_state(user, state)
    assert fresh.item_ids == model.item_ids
    np.testing.assert_allclose(predictions(fresh), predictions(model), rtol=0, atol=1e-7)
    for user in USERS:
        np.testing.assert_allclose(fresh.score_all(user), model.score_all(user), atol=1e-7)
    assert fresh.user_state("nobody") is None


def test_pickle_round_trip():
    model = fit(ImplicitMF(**PARAMS), training_data())
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(predictions(copy), predictions(model))
    # The random stream travels too: both go on learning identically.
    data = training_data(50, seed=9)
    np.testing.assert_array_equal(predictions(fit(copy, data)), predictions(fit(model, data)))


# --- Engine ---------------------------------------------------------------------------------


def synthetic_events(n: int, seed: int = 1) -> list[Event]:
    return [event_from_dict(raw) for raw in SyntheticWorld(SyntheticConfig(seed=seed)).events(n)]


def warm_engine(config: EngineConfig | None = None) -> Engine:
    """An engine that knows every item of ITEMS through other users' clicks and buys."""
    engine = Engine(config)
    t = 0
    for round_ in range(3):
        for index, item in enumerate(ITEMS):
            t += 1000
            user = f"other-{(index + round_) % 4}"
            engine.learn(make_event("click" if round_ else "buy", user, item, t))
    engine.drain_changes()
    return engine


def test_engine_is_deterministic_for_a_seed():
    events = synthetic_events(3000)
    config = engine_config(load_settings())
    first, second = Engine(config), Engine(config)
    for event in events:
        first.learn(event)
        second.learn(event)
    users = sorted({event.user_id for event in events})[:40]
    for user in users:
        assert first.recommend(user, 10) == second.recommend(user, 10)
    assert first.related("item-1", 10) == second.related("item-1", 10)


def test_engine_seed_changes_the_model():
    events = synthetic_events(3000)
    first, second = Engine(EngineConfig(seed=1)), Engine(EngineConfig(seed=2))
    for event in events:
        first.learn(event)
        second.learn(event)
    assert not np.allclose(first.model.score_all("user-1"), second.model.score_all("user-1"))


def test_bought_consumed_blacklisted_are_never_recommended():
    engine = warm_engine()
    user = "user-x"
    engine.learn(make_event("buy", user, ITEMS[0], 100_000, value=1))
    engine.learn(make_event("consume", user, ITEMS[1], 101_000, value=0.5))
    engine.learn(make_event("blacklist", user, ITEMS[2], 102_000))
    excluded = set(ITEMS[:3])
    recommended = {r.item_id for r in engine.recommend(user, len(ITEMS))}
    assert recommended and not recommended & excluded
    # The blacklist persists: later events, even a click on the item, do not lift it.
    t = 103_000
    for item in [*ITEMS[3:8], ITEMS[2], *ITEMS[3:8]]:
        t += 1000
        engine.learn(make_event("click", user, item, t))
    for _ in range(20):
        t += 1000
        engine.learn(make_event("click", "other-0", ITEMS[2], t))
    recommended = {r.item_id for r in engine.recommend(user, len(ITEMS))}
    assert ITEMS[2] not in recommended
    assert not recommended & excluded


def test_login_merges_the_anonymous_history():
    engine = warm_engine()
    anonymous, known = "anon-1", "user-k"
    engine.learn(make_event("click", known, ITEMS[5], 100_000))
    engine.learn(make_event("buy", anonymous, ITEMS[0], 101_000, value=1))
    engine.learn(make_event("blacklist", anonymous, ITEMS[1], 102_000))
    assert ITEMS[0] in {r.item_id for r in engine.recommend(known, len(ITEMS))}
    engine.learn(make_event("login", known, t=103_000, previous_user_id=anonymous))
    changes = engine.drain_changes()
    assert anonymous in changes.removed_users and known in changes.users
    assert anonymous not in engine.histories and anonymous not in engine.model.user_factors
    recommended = {r.item_id for r in engine.recommend(known, len(ITEMS))}
    assert recommended and not recommended & {ITEMS[0], ITEMS[1]}
    assert engine.histories[known].interactions == 2


def test_events_of_the_anonymous_id_arriving_after_the_login_go_to_the_user():
    # Kafka orders neither topics nor keys against each other: the login (keyed by the
    # user) may be learned before the anonymous purchase it follows.
    engine = warm_engine()
    anonymous, known = "anon-7", "user-late"
    engine.learn(make_event("login", known, t=100_000, previous_user_id=anonymous))
    assert known in engine.drain_changes().users
    engine.learn(make_event("buy", anonymous, ITEMS[3], 99_000, value=1))
    changes = engine.drain_changes()
    assert known in changes.users and anonymous not in engine.histories
    assert ITEMS[3] in engine.histories[known].excluded
    assert ITEMS[3] not in {r.item_id for r in engine.recommend(known, len(ITEMS))}


def event_sequences() -> st.SearchStrategy[list[Event]]:
    """Small random but valid event sequences over few users and items."""
    users = [*USERS[:3], "anon-0", "anon-1"]
    step = st.tuples(
        st.sampled_from(
            ["click", "buy", "consume", "basket", "rate", "impression", "blacklist", "login"]
        ),
        st.sampled_from(users),
        st.sampled_from(users),
        st.sampled_from(ITEMS[:8]),
        st.lists(st.sampled_from(ITEMS[:8]), min_size=1, max_size=5, unique=True),
        st.integers(1, 5),
        st.integers(0, 4 * 3_600_000),
    )

    def build(steps) -> list[Event]:
        events, t = [], 0
        for index, (kind, user, other, item, shown, stars, gap) in enumerate(steps):
            t += gap
            raw: dict = {
                "event_id": f"h{index}",
                "type": kind,
                "user_id": user,
                "timestamp": T0 + t,
            }
            if kind == "impression":
                raw["items"] = shown
            elif kind == "login":
                if other == user:
                    continue
                raw["previous_user_id"] = other
            else:
                raw["item_id"] = item
            if kind == "rate":
                raw["value"] = stars
            events.append(event_from_dict(raw))
        return events

    return st.lists(step, min_size=1, max_size=40).map(build)


@given(event_sequences(), st.integers(0, 12))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_recommend_is_short_sorted_unique_and_excludes(events, n):
    engine = Engine(EngineConfig(n_factors=4, seed=7))
    for event in events:
        engine.learn(event)
    for user in {event.user_id for event in events} | {"nobody"}:
        recommendations = engine.recommend(user, n)
        ids = [r.item_id for r in recommendations]
        scores = [r.score for r in recommendations]
        assert len(ids) <= n
        assert len(set(ids)) == len(ids)
        assert scores == sorted(scores, reverse=True)
        history = engine.histories.get(user)
        if history is not None:
            assert not set(ids) & set(history.excluded)
            assert not set(ids) & history.blacklisted


def _snapshot(engine: Engine) -> tuple[dict, dict, dict]:
    model = engine.model
    items = {
        item: (model.item_factors[index].copy(), float(model.item_bias[index]))
        for item, index in model.item_index.items()
    }
    users = {user: vector.copy() for user, vector in model.user_factors.items()}
    histories = {user: history.to_state() for user, history in engine.histories.items()}
    return items, users, histories


@given(event_sequences())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_drain_changes_lists_everything_touched(events):
    engine = Engine(EngineConfig(n_factors=4, seed=7))
    for event in events:
        items_before, users_before, histories_before = _snapshot(engine)
        engine.learn(event)
        changes = engine.drain_changes()
        items_after, users_after, histories_after = _snapshot(engine)
        for item, (vector, bias) in items_after.items():
            old = items_before.get(item)
            if old is None or not np.array_equal(old[0], vector) or old[1] != bias:
                assert item in changes.items, (event, item)
        gone = (users_before.keys() - users_after.keys()) | (
            histories_before.keys() - histories_after.keys()
        )
        assert gone <= changes.removed_users, event
        for user, vector in users_after.items():
            old = users_before.get(user)
            if old is None or not np.array_equal(old, vector):
                assert user in changes.users, (event, user)
        for user, state in histories_after.items():
            if histories_before.get(user) != state:
                assert user in changes.users, (event, user)
        if event.item_id is not None:
            # An anonymous id that logged in acts as the user it became.
            owner = engine.aliases.get(event.user_id, event.user_id)
            assert event.item_id in changes.items and owner in changes.users
        positive = event.event_type == "click" or is_conversion(event)
        if positive and event.item_id is not None:
            assert changes.popularity
        # A second drain is empty: nothing is reported twice.
        again = engine.drain_changes()
        assert not (again.users or again.items or again.removed_users or again.pairs)


# --- related items: top-K logic ---------------------------------------------------------------

PARTNERS = [f"p{i}" for i in range(15)]
counts_strategy = st.dictionaries(
    st.sampled_from(PARTNERS), st.integers(1, 50).map(float), max_size=len(PARTNERS)
)


@given(
    counts_strategy,
    st.dictionaries(st.sampled_from(PARTNERS), st.integers(0, 100).map(float)),
    st.floats(0.0, 2.0),
    st.integers(0, 20),
    st.sets(st.sampled_from(PARTNERS)),
)
def test_rank_related_is_sorted_short_and_excludes(counts, popularity, discount, n, exclude):
    ranked = rank_related(counts.items(), popularity, discount, n, exclude)
    assert len(ranked) <= n
    assert not {partner for partner, _ in ranked} & exclude
    assert len({partner for partner, _ in ranked}) == len(ranked)
    assert [score for _, score in ranked] == sorted((s for _, s in ranked), reverse=True)
    for partner, score in ranked:
        assert score == pytest.approx(
            counts[partner] / (popularity.get(partner, 0) + 1) ** discount
        )
    assert len(ranked) == min(n, len(set(counts) - exclude))
    # It is the top: nothing left out scores above the last one kept.
    kept = {partner for partner, _ in ranked}
    for partner, count in counts.items():
        if ranked and partner not in kept and partner not in exclude:
            assert count / (popularity.get(partner, 0) + 1) ** discount <= ranked[-1][1]


@given(counts_strategy, st.integers(1, 20))
def test_trim_keeps_the_highest_counts(partners, cap):
    kept = trim(partners, cap)
    assert len(kept) == min(cap, len(partners))
    assert all(partners[partner] == count for partner, count in kept.items())
    dropped = set(partners) - set(kept)
    if kept and dropped:
        assert min(kept.values()) >= max(partners[partner] for partner in dropped)
        # Ties go as Redis ZREMRANGEBYRANK breaks them: the smaller member is dropped first.
        floor = min(kept.values())
        assert all(
            partner < min(p for p in kept if kept[p] == floor)
            for partner in dropped
            if partners[partner] == floor
        )


WINDOWS = RelatedConfig(
    click_window_ms=10_000, buy_window_ms=40_000, view_window_ms=20_000, partners=4
)
history_steps = st.lists(
    st.tuples(
        st.sampled_from(ITEMS[:6]),
        st.sampled_from(["click", "click", "buy", "basket", "consume"]),
        st.integers(0, 8_000),
    ),
    max_size=25,
)


def build_history(steps) -> tuple[UserHistory, int]:
    history, t = UserHistory(), 0
    for index, (item, kind, gap) in enumerate(steps):
        t += gap
        raw = {
            "event_id": f"c{index}",
            "type": kind,
            "user_id": "u",
            "item_id": item,
            "timestamp": T0 + t,
        }
        if kind == "consume":
            raw["value"] = 1.0
        history.add(event_from_dict(raw))
    return history, t


@given(
    history_steps,
    st.sampled_from(ITEMS[:6]),
    st.sampled_from(["click", "buy", "basket", "consume"]),
    st.integers(0, 8_000),
)
def test_co_occurrences_properties(steps, item, kind, gap):
    history, t = build_history(steps)
    event = make_event(kind, "u", item, t + gap)
    conversion = is_conversion(event)
    pairs = co_occurrences(history, event, conversion, WINDOWS)
    assert all(relation in RELATIONS and a != b for relation, a, b, _ in pairs)
    now = event.timestamp_ms
    if kind == "click":
        window = set(history.items_since(now - WINDOWS.click_window_ms, frozenset({"click"})))
    else:
        window = set(history.items_since(now - WINDOWS.buy_window_ms, CONVERSION_TYPES))
    if item in window:
        # A repeat within the window adds nothing.
        assert pairs == []
    for relation in ("also_clicked", "also_bought"):
        forward = Counter((a, b) for r, a, b, _ in pairs if r == relation)
        assert forward == Counter((b, a) for r, a, b, _ in pairs if r == relation)
    directed = [(a, b) for r, a, b, _ in pairs if r == "viewed_then_bought"]
    viewed = history.items_since(now - WINDOWS.view_window_ms, frozenset({"click"}))
    for a, b in directed:
        assert b == item and a in viewed and a != item
    assert len(directed) <= WINDOWS.partners
    if kind == "click":
        assert {r for r, *_ in pairs} <= {"also_clicked"}
    else:
        assert "also_clicked" not in {r for r, *_ in pairs}


def test_repeated_click_within_the_window_creates_no_pair():
    history = UserHistory()
    history.add(make_event("click", "u", "a", 0))
    history.add(make_event("click", "u", "b", 5000))
    assert co_occurrences(history, make_event("click", "u", "a", 6000), False, WINDOWS) == []
    # Once the first click of "a" left the window, "a" pairs again with what is inside it.
    history.add(make_event("click", "u", "c", 12_500))
    pairs = co_occurrences(history, make_event("click", "u", "a", 13_000), False, WINDOWS)
    assert sorted(pairs) == [
        ("also_clicked", "a", "b", 1.0),
        ("also_clicked", "a", "c", 1.0),
        ("also_clicked", "b", "a", 1.0),
        ("also_clicked", "c", "a", 1.0),
    ]


def test_viewed_then_bought_is_directed():
    history = UserHistory()
    history.add(make_event("click", "u", "a", 0))
    buy = make_event("buy", "u", "b", 1000, value=1)
    assert co_occurrences(history, buy, True, WINDOWS) == [("viewed_then_bought", "a", "b", 1.0)]


ranked_lists = counts_strategy.map(lambda counts: rank_related(counts.items(), {}, 0.0, 50))


@given(st.sampled_from(RELATIONS), ranked_lists, st.integers(0, 20))
def test_blend_of_one_relation_preserves_its_order(relation, ranked, n):
    blended = blend_related({relation: ranked}, n)
    assert blended == [(partner, score, relation) for partner, score in ranked[:n]]


@given(st.lists(ranked_lists, min_size=2, max_size=3), st.integers(0, 20))
def test_blend_of_several_relations_is_sorted_short_and_unique(lists, n):
    blended = blend_related(dict(zip(RELATIONS, lists, strict=False)), n)
    partners = [partner for partner, _, _ in blended]
    assert len(partners) <= n and len(set(partners)) == len(partners)
    scores = [score for _, score, _ in blended]
    assert scores == sorted(scores, reverse=True)
    assert all(label == "blend" for _, _, label in blended)
