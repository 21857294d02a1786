"""Related-item counts around a login do not depend on whether the anonymous events or the
login are learned first (they live on different partitions, often on different workers).

Each id counts the pairs of its own history; when the login merges them, the engine adds the
pairs that hold only in the merged history and takes back the pairs counted under both ids
(:func:`pipeline.features.related.model.merge_pairs`)."""

from __future__ import annotations

import itertools
import random
from typing import Any

from pipeline.core.events import Event, event_from_dict
from pipeline.core.settings import load_settings
from pipeline.features.personal.config import personal_config
from pipeline.features.personal.engine import Engine
from pipeline.features.related.model import RELATIONS, holding_pairs, merge_pairs
from tests.unit.features.helpers import T0_MS

MINUTE = 60_000


def events(seed: int) -> tuple[list[Event], Event, list[Event]]:
    """A user's events, the login of an anonymous id into the user, the anonymous events;
    items and times interleave so that cross pairs (anonymous x user) and shared pairs
    (held in both histories) both exist."""
    rng = random.Random(seed)
    numbers = itertools.count()

    def event(user: str, kind: str, item: str, minute: int) -> Event:
        return event_from_dict(
            {
                "event_id": f"e{next(numbers)}",
                "type": kind,
                "user_id": user,
                "item_id": item,
                "timestamp": T0_MS + minute * MINUTE,
            }
        )

    def some(user: str) -> list[Event]:
        return [
            event(user, rng.choice(["click", "click", "buy"]), f"i{rng.randrange(6)}", minute)
            for minute in sorted(rng.sample(range(240), 9))
        ]

    login = event_from_dict(
        {
            "event_id": "login",
            "type": "login",
            "user_id": "u",
            "previous_user_id": "anon",
            "timestamp": T0_MS + 120 * MINUTE,
        }
    )
    return some("u"), login, some("anon")


def counts(order: list[Event]) -> dict[tuple[str, str], dict[str, float]]:
    engine = Engine(personal_config(load_settings(related_max_neighbours=100)))
    for event in order:
        engine.learn(event)
    engine.drain_changes()
    return {
        (relation, anchor): dict(partners)
        for relation in RELATIONS
        for anchor, partners in engine.cooc.counts()[relation].items()
        if partners
    }


def test_counts_around_a_login_do_not_depend_on_the_order_of_arrival() -> None:
    for seed in range(20):
        mine, login, anonymous = events(seed)
        reference = counts([login, *mine, *anonymous])  # everything under the user's id
        assert reference, seed
        for order in (
            [*mine, *anonymous, login],
            [*anonymous, *mine, login],
            [*anonymous, login, *mine],
            [*mine, *anonymous[:4], login, *anonymous[4:]],
        ):
            assert counts(order) == reference, seed


def test_merge_pairs_adds_cross_pairs_and_takes_back_pairs_counted_twice() -> None:
    config = personal_config(load_settings()).related
    user = type("H", (), {"recent": [("a", "click", T0_MS), ("b", "click", T0_MS + MINUTE)]})
    anonymous = type(
        "H",
        (),
        {
            "recent": [
                ("a", "click", T0_MS + 2 * MINUTE),
                ("b", "click", T0_MS + 3 * MINUTE),
                ("c", "click", T0_MS + 4 * MINUTE),
            ]
        },
    )
    changes = merge_pairs(user(), anonymous(), config)
    # {a, b} was counted under both ids: once too many. {a, c} and {b, c} already held in
    # the anonymous history alone: nothing to add.
    assert changes == [("also_clicked", "a", "b", -1.0), ("also_clicked", "b", "a", -1.0)]


def random_history(rng: random.Random, n: int) -> Any:
    """``n`` entries of clicks and conversions (low ratings too) over 8 items and 50 hours,
    in history order."""
    kinds = ["click", "click", "buy", "basket", "rate", "rate_low"]
    entries = [
        (f"i{rng.randrange(8)}", rng.choice(kinds), T0_MS + rng.randrange(3000) * MINUTE)
        for _ in range(n)
    ]
    return type("H", (), {"recent": sorted(entries, key=lambda e: (e[2], e[0], e[1]))})()


def test_merge_pairs_are_the_merged_historys_pairs_counted_once() -> None:
    """Against the definition, on random histories (shared items, interleaved times): +1
    for each pair only the merged history holds, -1 for each pair both histories held."""
    config = personal_config(load_settings()).related
    for seed in range(40):
        rng = random.Random(seed)
        user = random_history(rng, rng.randrange(0, 40))
        anonymous = random_history(rng, rng.randrange(0, 8))
        mine = holding_pairs(user.recent, config)
        theirs = holding_pairs(anonymous.recent, config)
        both = sorted([*user.recent, *anonymous.recent], key=lambda e: (e[2], e[0], e[1]))
        merged = holding_pairs(both, config)
        expected = [(r, a, b, 1.0) for r, a, b in merged - mine - theirs]
        expected += [(r, a, b, -1.0) for r, a, b in mine & theirs]
        assert merge_pairs(user, anonymous, config) == sorted(expected), seed
