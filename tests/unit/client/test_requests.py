"""What the client sends: paths (ids percent-encoded), query strings, bodies, headers, and
the event_id/timestamp it fills in."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from pipeline.client import Client
from pipeline.client.calls import prepare_events
from tests.unit.client.helpers import COLLECTOR, KEY, READER, Server, answer, batch

ACCEPTED = batch([{"index": 0, "event_id": "e1", "status": "accepted"}])
FOR_YOU = {"user_id": "u", "stage": "personal", "generated_at": 1, "items": []}


def test_events_without_id_or_timestamp_get_a_uuid_hex_and_now():
    server = Server(answer(200, ACCEPTED))
    given = [{"type": "click", "user_id": "u1", "item_id": "i1"}, {"type": "click"}]
    before = int(time.time() * 1000)
    with server.client() as client:
        client.track(given)
    after = int(time.time() * 1000)
    sent = server.sent()
    ids = [event["event_id"] for event in sent]
    assert len(set(ids)) == 2
    for event_id in ids:
        assert len(event_id) == 32 and int(event_id, 16) >= 0  # uuid4().hex
    assert all(before <= event["timestamp"] <= after for event in sent)
    assert sent[0]["item_id"] == "i1"
    # The caller's dicts are not changed.
    assert given == [{"type": "click", "user_id": "u1", "item_id": "i1"}, {"type": "click"}]


def test_given_event_id_and_timestamp_are_kept_and_none_is_filled():
    prepared = prepare_events(
        [{"event_id": "mine", "timestamp": 5}, {"event_id": None, "timestamp": None}],
        now_ms=lambda: 1234,
        new_id=lambda: "fresh",
    )
    assert prepared == [
        {"event_id": "mine", "timestamp": 5},
        {"event_id": "fresh", "timestamp": 1234},
    ]


def test_one_event_is_sent_as_a_list_of_one_and_an_empty_list_sends_nothing():
    server = Server(answer(200, ACCEPTED))
    with server.client() as client:
        empty = client.track([])
        assert server.requests == []
        assert (empty.accepted, empty.rejected, empty.results) == (0, 0, ())
        client.track({"type": "click", "user_id": "u", "item_id": "i"})
    assert len(server.sent()) == 1
    assert server.requests[0].url == f"{COLLECTOR}/v1/events"
    assert server.requests[0].method == "POST"


def test_a_non_mapping_event_is_refused_before_sending():
    server = Server(answer(200, ACCEPTED))
    with server.client() as client, pytest.raises(TypeError, match="element 1"):
        client.track([{"type": "click"}, "click"])  # type: ignore[list-item]
    assert server.requests == []


@pytest.mark.parametrize(
    ("user_id", "raw_path"),
    [
        ("a/b", b"/v1/users/a%2Fb/recommendations"),
        ("mail@x.org", b"/v1/users/mail%40x.org/recommendations"),
        ("k:1+2=3", b"/v1/users/k%3A1%2B2%3D3/recommendations"),
        ("..", b"/v1/users/%2E%2E/recommendations"),
        (".", b"/v1/users/%2E/recommendations"),
        ("plain-id_1.2", b"/v1/users/plain-id_1.2/recommendations"),
    ],
)
def test_path_ids_are_percent_encoded_as_one_segment(user_id: str, raw_path: bytes):
    server = Server(answer(200, FOR_YOU))
    with server.client() as client:
        client.for_you(user_id, n=3)
    assert server.requests[0].url.raw_path == raw_path + b"?n=3"


def test_for_you_sends_the_request_context_as_one_json_parameter():
    server = Server(answer(200, FOR_YOU))
    with server.client() as client:
        client.for_you("u", n=3, context={"device": "mobile", "slot": 2})
    params = dict(server.requests[0].url.params)
    assert params["n"] == "3"
    assert orjson.loads(params["context"]) == {"device": "mobile", "slot": 2}


def test_a_dot_dot_id_cannot_climb_out_of_its_path():
    # Percent-encoding leaves "." alone; the id still stays one segment in the raw path,
    # which is what the server routes on.
    server = Server(answer(200, FOR_YOU))
    with server.client() as client:
        client.for_you("a/../../v1/trending")
    assert server.requests[0].url.raw_path.startswith(b"/v1/users/a%2F..%2F..%2Fv1%2Ftrending/")


@pytest.mark.parametrize("bad", ["", None, 7])
def test_empty_or_non_string_ids_are_refused_before_sending(bad: Any):
    server = Server(answer(200, FOR_YOU))
    with server.client() as client:
        with pytest.raises(ValueError, match="user_id"):
            client.for_you(bad)
        with pytest.raises(ValueError, match="user_id"):
            client.forget_user(bad)
    assert server.requests == []


def test_forget_user_deletes_the_encoded_user_on_the_collector():
    server = Server(answer(202, {"user_id": "a/b", "status": "accepted"}))
    with server.client() as client:
        assert client.forget_user("a/b") is None
    request = server.requests[0]
    assert request.method == "DELETE"
    assert request.url.host == "collector.test"
    assert request.url.raw_path == b"/v1/users/a%2Fb"


def test_recommend_sends_repeated_ids_a_fields_list_and_other_params():
    body = {
        "recommendation_id": "product_page:1",
        "scenario": "product_page",
        "user_id": None,
        "generated_at": 1,
        "items": [],
    }
    server = Server(answer(200, body))
    with server.client() as client:
        client.recommend(
            "product_page",
            user_id="u/1",
            item_ids=["i1", "i2"],
            n=5,
            exclude=("x1", "x2"),
            fields=["title", "price"],
            diversity=0.3,
            in_stock=True,
            season="summer",
            category=["shoes", "boots"],
        )
    request = server.requests[0]
    assert request.method == "GET"
    assert str(request.url).startswith(f"{READER}/v1/recommendations?")
    assert request.url.params.multi_items() == [
        ("scenario", "product_page"),
        ("user_id", "u/1"),
        ("item_id", "i1"),
        ("item_id", "i2"),
        ("n", "5"),
        ("exclude", "x1"),
        ("exclude", "x2"),
        ("fields", "title,price"),
        ("category", "shoes"),
        ("category", "boots"),
        ("diversity", "0.3"),
        ("in_stock", "true"),
        ("season", "summer"),
    ]


def test_recommend_leaves_out_what_was_not_given_and_takes_a_lone_string_as_one_id():
    body = {"recommendation_id": "home:1", "scenario": "home", "items": []}
    server = Server(answer(200, body))
    with server.client() as client:
        client.recommend("home", item_ids="sku-123", exclude="sku-9")
    assert server.requests[0].url.params.multi_items() == [
        ("scenario", "home"),
        ("item_id", "sku-123"),
        ("n", "10"),
        ("exclude", "sku-9"),
    ]


def test_reads_go_to_the_reader_with_their_parameters():
    related = {"item_id": "a/b", "relation": "also_bought", "items": []}
    trending = {"kind": "buys", "window": "1h", "category": None, "generated_at": 1, "items": []}
    stats = {"scenario": "home", "window": "7d", "served": 0, "stages": {}, "items": []}
    server = Server(
        answer(200, related),
        answer(200, trending),
        answer(200, trending),
        answer(200, {"scenarios": []}),
        answer(200, {**stats, "impressions": 0, "clicks": 0, "conversions": 0}),
    )
    with server.client() as client:
        client.related("a/b", n=4, relation="also_bought")
        client.trending(kind="buys", window="1h", n=3)
        client.trending(category="shoes")
        client.scenarios()
        client.stats("home", window="7d")
    urls = [str(request.url) for request in server.requests]
    assert urls == [
        f"{READER}/v1/items/a%2Fb/related?n=4&relation=also_bought",
        f"{READER}/v1/trending?kind=buys&window=1h&n=3",
        f"{READER}/v1/trending?category=shoes&n=10",
        f"{READER}/v1/scenarios",
        f"{READER}/v1/scenarios/home/stats?window=7d",
    ]


def test_rank_posts_the_items_and_the_context():
    server = Server(answer(200, {"user_id": "u", "items": []}))
    with server.client() as client:
        client.rank("u", ["i1", "i2"], context={"device": "mobile", "hour": 9})
    request = server.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{READER}/v1/users/u/rank")
    assert server.sent() == {"items": ["i1", "i2"], "context": {"device": "mobile", "hour": 9}}


def test_publish_items_posts_copies_to_the_collector():
    item = {"item_id": "i1", "categories": ["tents"], "available": True, "price": 99.5}
    server = Server(answer(200, batch([{"index": 0, "item_id": "i1", "status": "accepted"}])))
    with server.client() as client:
        result = client.publish_items(item)
    assert str(server.requests[0].url) == f"{COLLECTOR}/v1/items"
    assert server.sent() == [item]
    assert result.accepted_ids == ["i1"]


def test_the_key_travels_as_a_header_and_never_in_the_url():
    server = Server(answer(200, FOR_YOU))
    with server.client() as client:
        client.for_you("u")
    request = server.requests[0]
    assert request.headers["X-API-Key"] == KEY
    assert KEY not in str(request.url)
    assert request.headers["Accept"] == "application/json"


def test_without_a_key_no_key_header_is_sent():
    server = Server(answer(200, FOR_YOU))
    with server.client(api_key=None) as client:
        client.for_you("u")
    assert "X-API-Key" not in server.requests[0].headers


def test_default_urls_are_the_local_stack_and_bases_keep_their_path_prefix():
    assert repr(Client()).startswith(
        "Client(collector_url='http://127.0.0.1:8001', reader_url='http://127.0.0.1:8000'"
    )
    server = Server(answer(200, FOR_YOU))
    client = Client(reader_url="https://shop.example/recs/", transport=server.transport())
    with client:
        client.for_you("u")
    assert (
        str(server.requests[0].url) == "https://shop.example/recs/v1/users/u/recommendations?n=10"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"reader_url": "127.0.0.1:8000"}, "reader_url"),
        ({"collector_url": "ftp://host"}, "collector_url"),
        ({"reader_url": "http://host/?api_key=x"}, "reader_url"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"backoff_s": -0.1}, "backoff_s"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        Client(**options)
