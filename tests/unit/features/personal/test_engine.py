"""The personal engine (pipeline.features.personal.engine): determinism, exclusions, identity
merges, what a drain reports, and edge cases found in review.

Nothing here needs a server: the engine is a plain class, fed plain events. Its configuration
is built from settings exactly as the agent builds it.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.events import Event, event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine, PersonalConfig
from pipeline.features.personal.recommend import Recommender
from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld
from tests.unit.features.personal.helpers import (
    ITEMS,
    T0,
    USERS,
    event_at,
    from_settings,
    is_conversion,
    make_event,
)

# A small engine for the property tests: 4 factors, seed 7.
SMALL = from_settings(mf_factors=4, mf_seed=7)


def synthetic_events(n: int, seed: int = 1) -> list[Event]:
    return [event_from_dict(raw) for raw in SyntheticWorld(SyntheticConfig(seed=seed)).events(n)]


def warm_engine(config: PersonalConfig | None = None) -> Engine:
    """An engine that knows every item of ITEMS through other users' clicks and buys."""
    engine = Engine(config or from_settings())
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
    config = personal_config(load_settings())
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
    first, second = Engine(from_settings(mf_seed=1)), Engine(from_settings(mf_seed=2))
    for event in events:
        first.learn(event)
        second.learn(event)
    assert not np.allclose(first.model.score_all("user-1"), second.model.score_all("user-1"))


def test_bought_consumed_rated_blacklisted_are_never_recommended():
    """Whatever a user bought, consumed, rated (well or badly: a rating says the user has
    had the item) or blacklisted stays out of their lists."""
    engine = warm_engine()
    user = "user-x"
    engine.learn(make_event("buy", user, ITEMS[0], 100_000, value=1))
    engine.learn(make_event("consume", user, ITEMS[1], 101_000, value=0.5))
    engine.learn(make_event("blacklist", user, ITEMS[2], 102_000))
    engine.learn(make_event("rate", user, ITEMS[9], 102_300, value=5))
    engine.learn(make_event("rate", user, ITEMS[10], 102_600, value=1))
    excluded = {*ITEMS[:3], ITEMS[9], ITEMS[10]}
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
    engine = Engine(SMALL)
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
    engine = Engine(SMALL)
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


def test_the_drained_pair_counts_sum_what_learning_counted_and_can_be_left_out():
    """The pairs a drain reports are the change of every list's counts (no trim in a log
    this short), each pair once; an engine that writes nothing learns the same counts and
    reports none."""
    events = synthetic_events(400)
    engine, silent = (
        Engine(personal_config(load_settings())),
        Engine(personal_config(load_settings()), pair_writes=False),
    )
    for each in (engine, silent):
        each.learn_batch(events[:200])
    before = {
        r: {a: dict(p) for a, p in lists.items()} for r, lists in engine.cooc.counts().items()
    }
    changes = engine.learn_batch(events[200:])
    assert silent.learn_batch(events[200:]).pairs == {}
    assert silent.cooc.counts() == engine.cooc.counts()
    assert any(changes.pairs.values())
    for relation, lists in engine.cooc.counts().items():
        for anchor, partners in lists.items():
            for partner, count in partners.items():
                earlier = before[relation].get(anchor, {}).get(partner, 0.0)
                summed = changes.pairs.get(relation, {}).get(anchor, {}).get(partner, 0.0)
                assert count == earlier + summed, (relation, anchor, partner)


# --- edge cases ----------------------------------------------------------------------------


def test_a_low_rating_never_counts_as_a_conversion_for_also_bought():
    engine = Engine(from_settings(mf_factors=4))
    engine.learn(event_at("rate", "u", "hated", T0, value=1))
    engine.learn(event_at("buy", "u", "liked", T0 + 1000, value=1))
    assert engine.cooc.counts()["also_bought"].get("liked", {}) == {}
    assert engine.histories["u"].recent[0][1] == "rate_low"


def test_an_item_rated_low_leads_the_users_list_to_nothing():
    """A low rating is explicit negative feedback: an item the user only rated low (twice,
    or once) is no anchor of the user's list, so what others bought with it scores nothing
    for that user; a good rating of the same item does lead to it, and so does a click
    before a low rating (what others bought with an item the user looked at still tells:
    the evaluation's logs score lower without it)."""
    engine = Engine(from_settings(mf_factors=4))
    t = T0
    for other in ("o1", "o2", "o3"):
        for item in ("film", "sequel"):
            t += 1000
            engine.learn(event_at("buy", other, item, t, value=1))
    haters = {"hater": ["1"], "twice": ["2", "1"]}
    for user, steps in {**haters, "fan": ["5"], "viewer": ["click", "1"]}.items():
        for step in steps:
            t += 1000
            if step == "click":
                engine.learn(event_at("click", user, "film", t))
            else:
                engine.learn(event_at("rate", user, "film", t, value=int(step)))
    engine.drain_changes()
    sequel = engine.model.item_index["sequel"]
    for user in ("fan", "viewer"):
        parts = engine.recommender.parts(user)
        assert parts is not None and parts.neighbours is not None
        assert parts.neighbours[sequel] > 0, user
    for user in haters:
        parts = engine.recommender.parts(user)
        assert parts is not None
        assert parts.neighbours is None or parts.neighbours[sequel] == 0, user
        assert engine.recommend(user, 1)[0].source.get("source_items") is None, user


def test_a_cold_users_list_follows_trending_between_two_lists_of_one_batch():
    """The trending part of a cold user's list is cached between lists: learning in between
    (the trending counts change, the item set does not) must give what a fresh recommender
    computes, with the newly trending item ahead."""
    engine = warm_engine(from_settings(cold_start_interactions=3))
    cold = "newcomer"
    engine.learn(make_event("click", cold, ITEMS[0], t=500_000))
    first = engine.recommend(cold, len(ITEMS))
    assert first[0].source["stage"] == "cold_start"
    rising = first[-1].item_id
    for n in range(40):
        engine.learn(make_event("click", f"fan-{n % 4}", rising, t=500_001 + n))
    again = engine.recommend(cold, len(ITEMS))
    fresh = Recommender(engine).recommend(cold, len(ITEMS))
    assert again == fresh
    assert [r.item_id for r in again].index(rising) < [r.item_id for r in first].index(rising)
