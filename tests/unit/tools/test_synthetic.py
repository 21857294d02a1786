"""Synthetic generator (pipeline.tools.synthetic): reproducibility, the event contract and the planted structure."""

from __future__ import annotations

import io
import math
import re
from collections import Counter, defaultdict
from itertools import combinations, islice

import orjson
import pytest

from pipeline.tools.synthetic import SyntheticConfig, SyntheticWorld, write_jsonl

ID_RE = re.compile(r"^[\w.:@/+=-]{1,128}$")
TYPES = {"click", "consume", "buy", "basket", "rate", "impression", "blacklist", "login"}
CONVERSIONS = {"basket", "buy", "consume"}
N_EVENTS = 60_000


def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.match(value) is not None


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_event(event: dict) -> None:
    """The event contract, independent of pipeline.core.events."""
    allowed = {
        "event_id",
        "type",
        "user_id",
        "item_id",
        "items",
        "timestamp",
        "value",
        "price",
        "session_id",
        "recommendation_id",
        "previous_user_id",
        "context",
    }
    assert set(event) <= allowed, event
    assert isinstance(event["event_id"], str) and 1 <= len(event["event_id"]) <= 128
    kind = event["type"]
    assert kind in TYPES
    assert is_id(event["user_id"])
    assert isinstance(event["timestamp"], int) and not isinstance(event["timestamp"], bool)
    if kind in ("impression", "login"):
        assert "item_id" not in event
    else:
        assert is_id(event["item_id"])
    if kind == "impression":
        items = event["items"]
        assert isinstance(items, list) and 1 <= len(items) <= 100
        assert all(is_id(item) for item in items) and len(set(items)) == len(items)
        assert is_id(event["recommendation_id"])
    else:
        assert "items" not in event
    if kind == "login":
        assert is_id(event["previous_user_id"]) and event["previous_user_id"] != event["user_id"]
    else:
        assert "previous_user_id" not in event
    if "value" in event:
        value = event["value"]
        assert is_number(value)
        assert kind in ("rate", "consume", "buy")
        if kind == "rate":
            assert 1 <= value <= 5
        elif kind == "consume":
            assert 0 <= value <= 1
        else:
            assert value > 0
    assert kind != "rate" or "value" in event
    if "price" in event:
        assert kind == "buy" and is_number(event["price"]) and event["price"] >= 0
    for name in ("session_id", "recommendation_id"):
        if name in event:
            assert is_id(event[name])
    if "context" in event:
        context = event["context"]
        assert isinstance(context, dict)
        for key, entry in context.items():
            assert isinstance(key, str) and key
            assert isinstance(entry, str) or is_number(entry)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SyntheticConfig())


@pytest.fixture(scope="module")
def log(world: SyntheticWorld) -> list[dict]:
    return list(world.events(N_EVENTS))


def dump(events) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def test_same_seed_is_byte_identical_and_seeds_differ() -> None:
    config = SyntheticConfig(seed=7)
    first, second = SyntheticWorld(config), SyntheticWorld(config)
    assert dump(first.events(5000)) == dump(second.events(5000))
    assert dump(first.catalog()) == dump(second.catalog())
    other = SyntheticWorld(SyntheticConfig(seed=8))
    assert dump(other.events(5000)) != dump(first.events(5000))
    assert dump(other.catalog()) != dump(first.catalog())


def test_every_call_restarts_and_shorter_logs_are_prefixes(world: SyntheticWorld) -> None:
    short = dump(world.events(3000))
    assert dump(world.events(3000)) == short
    assert dump(islice(world.events(), 3000)) == short
    assert dump(world.events(7000)).startswith(short)
    assert list(world.events(0)) == []


def test_every_event_meets_the_contract(log: list[dict]) -> None:
    for event in log:
        check_event(event)
    assert len({event["event_id"] for event in log}) == len(log)
    stamps = [event["timestamp"] for event in log]
    assert all(a <= b for a, b in zip(stamps, stamps[1:], strict=False))
    config = SyntheticConfig()
    assert stamps[0] == config.start_ms
    span_s = (stamps[-1] - stamps[0]) / 1000
    assert span_s == pytest.approx(N_EVENTS / config.events_per_second, rel=0.01)


def test_rate_and_start_are_configurable() -> None:
    events = list(
        SyntheticWorld(SyntheticConfig(start_ms=1_000_000_000_000, events_per_second=3.0)).events(
            301
        )
    )
    assert events[0]["timestamp"] == 1_000_000_000_000
    assert events[-1]["timestamp"] == 1_000_000_000_000 + 100_000


def test_catalog_meets_the_item_contract(world: SyntheticWorld) -> None:
    catalog = world.catalog()
    assert len(catalog) == SyntheticConfig().n_items
    assert len({item["item_id"] for item in catalog}) == len(catalog)
    for item in catalog:
        assert is_id(item["item_id"])
        assert 1 <= len(item["categories"]) <= 2 and all(map(is_id, item["categories"]))
        for name, value in item["attributes"].items():
            assert is_id(name)
            values = value if isinstance(value, list) else [value]
            assert values and all(map(is_id, values))
        assert isinstance(item["created_at"], int) and item["created_at"] < world.config.start_ms
        assert isinstance(item["available"], bool)
        assert isinstance(item["price"], float) and item["price"] >= 0
        assert isinstance(item["title"], str) and item["title"]
    categories = {category for item in catalog for category in item["categories"]}
    assert len(categories) > SyntheticConfig().n_categories // 2
    assert sum(not item["available"] for item in catalog) < len(catalog) * 0.1


def test_unavailable_items_are_never_shown(world: SyntheticWorld, log: list[dict]) -> None:
    hidden = {item["item_id"] for item in world.catalog() if not item["available"]}
    assert hidden
    for event in log:
        assert event.get("item_id") not in hidden
        assert not hidden.intersection(event.get("items", ()))


def test_event_mix(log: list[dict]) -> None:
    share = {kind: count / len(log) for kind, count in Counter(e["type"] for e in log).items()}
    assert 0.45 <= share["impression"] <= 0.55
    assert 0.25 <= share["click"] <= 0.35
    # Direct conversions (no click first, SyntheticConfig.direct_prob) add to those after clicks.
    assert 0.07 <= sum(share[kind] for kind in CONVERSIONS) <= 0.22
    assert 0.01 <= share["rate"] <= 0.08
    assert 0 < share["blacklist"] + share["login"] < 0.01


def test_conversions_concentrate_on_the_users_cluster(
    world: SyntheticWorld, log: list[dict]
) -> None:
    conversions = [e for e in log if e["type"] in CONVERSIONS]
    assert len(conversions) > 1000
    own = sum(
        world.user_cluster(e["user_id"]) == world.item_cluster(e["item_id"]) for e in conversions
    ) / len(conversions)
    assert own > 4 / world.config.n_clusters


def test_items_bought_together_share_a_cluster(world: SyntheticWorld, log: list[dict]) -> None:
    baskets: dict[str, set[str]] = defaultdict(set)
    for event in log:
        if event["type"] == "buy":
            baskets[event["session_id"]].add(event["item_id"])
    pairs = [pair for items in baskets.values() for pair in combinations(sorted(items), 2)]
    assert len(pairs) > 100
    same = sum(world.item_cluster(a) == world.item_cluster(b) for a, b in pairs) / len(pairs)
    assert same > 3 / world.config.n_clusters


def test_clicks_follow_impressions_with_position_bias(log: list[dict]) -> None:
    shown: dict[str, tuple[str, list[str]]] = {}
    clicks_at: Counter[int] = Counter()
    for event in log:
        if event["type"] == "impression":
            shown[event["recommendation_id"]] = (event["user_id"], event["items"])
        elif event["type"] == "click" and "recommendation_id" in event:
            # the impression came earlier, and the position points at the clicked item
            _, items = shown[event["recommendation_id"]]
            position = event["context"]["position"]
            assert items[position] == event["item_id"]
            clicks_at[position] += 1
    at_least_six = sum(len(items) >= 6 for _, items in shown.values())
    rate_0 = clicks_at[0] / len(shown)
    rate_5 = clicks_at[5] / at_least_six
    assert rate_0 > 2 * rate_5 > 0


def test_popularity_drifts(log: list[dict]) -> None:
    def top(events: list[dict], k: int = 20) -> set[str]:
        counts = Counter(item for e in events if e["type"] == "impression" for item in e["items"])
        return {item for item, _ in counts.most_common(k)}

    third = len(log) // 3
    first, last = top(log[:third]), top(log[-third:])
    neighbours = top(log[: third // 2]) & top(log[third // 2 : third])
    assert 0 < len(first & last) < len(neighbours)
    assert len(first & last) <= 15


def test_logins_move_an_earlier_anonymous_id(world: SyntheticWorld, log: list[dict]) -> None:
    seen_users: set[str] = set()
    logins = 0
    for event in log:
        if event["type"] == "login":
            previous = event["previous_user_id"]
            assert previous in seen_users and previous.startswith("anon-")
            assert not event["user_id"].startswith("anon-")
            assert world.user_cluster(previous) == world.user_cluster(event["user_id"])
            logins += 1
        seen_users.add(event["user_id"])
    assert logins > 10
    anonymous = {user for user in seen_users if user.startswith("anon-")}
    assert 0.02 < len(anonymous) / len(seen_users) < 0.5


def test_ratings_track_preference(world: SyntheticWorld, log: list[dict]) -> None:
    own, other = [], []
    for event in log:
        if event["type"] == "rate":
            same = world.user_cluster(event["user_id"]) == world.item_cluster(event["item_id"])
            (own if same else other).append(event["value"])
    assert len(own) > 100 and len(other) > 10
    assert sum(own) / len(own) > sum(other) / len(other) + 0.3


def test_ground_truth_lookups(world: SyntheticWorld) -> None:
    assert 0 <= world.user_cluster("user-0") < world.config.n_clusters
    assert 0 <= world.item_cluster("item-0") < world.config.n_clusters
    with pytest.raises(KeyError):
        world.user_cluster("nobody")
    with pytest.raises(KeyError):
        world.item_cluster("nothing")


def test_write_jsonl_to_path_binary_and_text(tmp_path, world: SyntheticWorld) -> None:
    events = list(world.events(5000))
    path = tmp_path / "events.jsonl"
    assert write_jsonl(events, path) == 5000
    assert write_jsonl(iter(events), str(path)) == 5000  # truncates, accepts str
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == events
    binary, text = io.BytesIO(), io.StringIO()
    assert write_jsonl(events, binary) == 5000
    assert write_jsonl(events, text) == 5000
    assert binary.getvalue() == path.read_bytes() == text.getvalue().encode()
    assert write_jsonl([], io.BytesIO()) == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"n_items": 0},
        {"events_per_second": 0.0},
        {"anonymous_fraction": 1.5},
        {"impression_size": (0, 5)},
        {"impression_size": (10, 5)},
        {"seed": -1},
        {"session_steps": 0.5},
        {"novelty_boost": -1.0},
        {"novelty_span": 0},
        {"timestamp_step_ms": 0},
    ],
)
def test_invalid_config_is_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        SyntheticConfig(**bad)


def test_tiny_worlds_still_work() -> None:
    config = SyntheticConfig(
        n_users=3,
        n_items=4,
        n_categories=2,
        n_clusters=2,
        concurrent_sessions=1,
        anonymous_fraction=1.0,
        login_prob=1.0,
    )
    events = list(SyntheticWorld(config).events(2000))
    for event in events:
        check_event(event)
    assert any(event["type"] == "login" for event in events)


def test_agrees_with_the_pipeline_contract(world: SyntheticWorld, log: list[dict]) -> None:
    events = pytest.importorskip("pipeline.core.events")
    items = pytest.importorskip("pipeline.core.items")
    for event in log[:10_000]:
        events.event_from_dict(event)
    for item in world.catalog():
        items.item_from_dict(item)


def test_descriptions_carry_the_taste_clusters(world: SyntheticWorld) -> None:
    """Items of one cluster share description words; items of different clusters share
    only the few common words: content alone separates the clusters."""
    words = {item["item_id"]: set(item["description"].split()) for item in world.catalog()}
    same, other = [], []
    ids = sorted(words)[:120]
    for a in ids:
        for b in ids:
            if a < b:
                overlap = len(words[a] & words[b]) / len(words[a] | words[b])
                both = world.item_cluster(a) == world.item_cluster(b)
                (same if both else other).append(overlap)
    assert same and other
    assert sum(same) / len(same) > 3 * sum(other) / len(other)
    # Ten words each (a word may repeat), all of them valid text.
    assert all(len(item["description"].split()) == 10 for item in world.catalog())


def test_novelty_makes_released_items_popular_while_they_are_new() -> None:
    """With ``novelty_boost`` an item released during the log gathers its clicks soon after
    its release (the "fresh" profile's shape); without it, over its whole life."""

    def young_share(boost: float) -> float:
        config = SyntheticConfig(
            seed=3,
            n_items=200,
            n_users=300,
            release_fraction=0.9,
            release_span=20_000,
            novelty_boost=boost,
            novelty_span=2_000,
        )
        world = SyntheticWorld(config)
        created = {item["item_id"]: item["created_at"] for item in world.catalog()}
        ms_per_event = 1000.0 / config.events_per_second
        young = old = 0
        for event in world.events(20_000):
            if event["type"] != "click":
                continue
            age = (event["timestamp"] - created[event["item_id"]]) / ms_per_event
            if 0 <= age < 2_000:
                young += 1
            elif age >= 2_000 and created[event["item_id"]] >= config.start_ms:
                old += 1
        return young / max(young + old, 1)

    assert young_share(3.0) > 1.5 * young_share(0.0)


def test_the_cli_offers_every_named_profile_and_each_builds() -> None:
    from pipeline.cli.bench import bench_ingest
    from pipeline.cli.data import generate
    from pipeline.tools.synthetic import PROFILES, profile

    for command, name in ((generate, "profile"), (bench_ingest, "profile_name")):
        (option,) = [param for param in command.params if param.name == name]
        assert list(option.type.choices) == list(PROFILES)  # type: ignore[attr-defined]
    for name in PROFILES:
        world = SyntheticWorld(profile(name, n_users=20, n_items=60, release_span=500))
        assert len(list(world.events(200))) == 200


def test_a_ratings_log_rates_each_item_once_per_user_in_bursts_of_whole_seconds() -> None:
    """The ratings profile: rate events alone, 1-5 stars that follow the user's taste, a
    user rates an item once, timestamps in whole seconds that a burst shares; a world too
    small for its users' appetite still yields every event asked for."""
    from pipeline.tools.synthetic import profile

    world = SyntheticWorld(profile("ratings", n_users=200, n_items=600, release_span=500))
    events = list(world.events(20_000))
    for event in events[:2000]:
        check_event(event)
    assert {event["type"] for event in events} == {"rate"}
    assert all(event["timestamp"] % 1000 == 0 for event in events)
    pairs = [(event["user_id"], event["item_id"]) for event in events]
    assert len(set(pairs)) == len(pairs)
    shared = Counter((event["user_id"], event["timestamp"]) for event in events)
    assert sum(count for count in shared.values() if count > 1) > len(events) / 4
    per_user = sorted(Counter(user for user, _ in pairs).values())
    assert per_user[-1] > 3 * per_user[len(per_user) // 2]  # a long tail of heavy users
    own, other = [], []
    for event in events:
        same = world.user_cluster(event["user_id"]) == world.item_cluster(event["item_id"])
        (own if same else other).append(event["value"])
    assert {event["value"] for event in events} == {1, 2, 3, 4, 5}
    assert sum(own) / len(own) > sum(other) / len(other) + 0.3
    tiny = SyntheticWorld(profile("ratings", n_users=3, n_items=4, n_clusters=2, n_categories=2))
    assert len(list(tiny.events(500))) == 500
