"""Retries: which failures are retried, how often, how long the client waits in between."""

from __future__ import annotations

import random

import httpx
import pytest

from pipeline.client import (
    AuthError,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    ServiceUnavailable,
)
from pipeline.client.calls import Call
from pipeline.client.retry import MAX_DELAY_S, Backoff, Failure, RetryPolicy
from tests.unit.client.helpers import Server, answer, batch, connect_error, error

FOR_YOU = {"user_id": "u", "stage": "personal", "generated_at": 1, "items": []}


@pytest.mark.parametrize("retry", range(8))
def test_backoff_lies_in_the_upper_half_of_a_doubling_ceiling(retry: int):
    backoff = Backoff(0.1)
    ceiling = min(MAX_DELAY_S, 0.1 * 2**retry)
    assert backoff.delay(retry, 0.0) == pytest.approx(ceiling / 2)
    assert backoff.delay(retry, 0.999999) == pytest.approx(ceiling, rel=1e-5)
    draws = [backoff.delay(retry, random.random()) for _ in range(200)]
    assert all(ceiling / 2 <= d <= ceiling for d in draws)
    assert len(set(draws)) > 1  # jitter: clients that failed together spread out


def test_backoff_is_capped_even_for_huge_retry_numbers():
    assert Backoff(1.0).delay(10_000, 0.999) <= MAX_DELAY_S
    assert Backoff(0.0).delay(5, 0.7) == 0.0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_or_unavailable_answer_is_retried_until_success(status: int):
    server = Server(error(status, "kafka_unavailable", "down"), answer(200, FOR_YOU))
    with server.client() as client:
        assert client.for_you("u").stage == "personal"
    assert len(server.requests) == 2
    assert len(server.sleeps) == 1 and 0.05 <= server.sleeps[0] <= 0.1


def test_retries_are_bounded_and_pauses_grow_within_their_bounds():
    server = Server(error(503, "redis_unavailable", "Redis unavailable (deadline 0.2 s)"))
    with (
        server.client(retries=3, backoff_s=0.2) as client,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        client.for_you("u")
    assert len(server.requests) == 4  # the first attempt and 3 retries
    bounds = [(0.1, 0.2), (0.2, 0.4), (0.4, 0.8)]
    assert len(server.sleeps) == 3
    for pause, (low, high) in zip(server.sleeps, bounds, strict=True):
        assert low <= pause <= high
    exc = caught.value
    assert (exc.status, exc.error, exc.attempts) == (503, "redis_unavailable", 4)
    assert "after 4 attempts" in exc.detail and "deadline 0.2 s" in exc.detail


def test_no_retries_means_one_attempt():
    server = Server(error(503, "kafka_unavailable", "down"))
    with server.client(retries=0) as client, pytest.raises(ServiceUnavailable) as caught:
        client.track({"type": "click", "user_id": "u", "item_id": "i"})
    assert len(server.requests) == 1 and server.sleeps == []
    assert caught.value.attempts == 1


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (connect_error(), "connection_failed"),
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.ConnectTimeout("timed out"), "timeout"),
        (httpx.RemoteProtocolError("peer closed connection"), "connection_failed"),
    ],
)
def test_connection_errors_and_timeouts_are_retried_then_reported(failure: Exception, code: str):
    server = Server(failure)
    with server.client(retries=2) as client, pytest.raises(ServiceUnavailable) as caught:
        client.scenarios()
    assert len(server.requests) == 3
    exc = caught.value
    assert (exc.status, exc.error, exc.attempts) == (None, code, 3)
    assert exc.__cause__ is failure


def test_a_connection_error_then_an_answer_succeeds():
    server = Server(connect_error(), answer(200, FOR_YOU))
    with server.client() as client:
        assert client.for_you("u").user_id == "u"
    assert len(server.requests) == 2


def test_a_retried_track_resends_the_same_event_ids():
    accepted = batch([{"index": 0, "event_id": "x", "status": "accepted"}])
    server = Server(
        error(503, "kafka_unavailable", "no ack"), connect_error(), answer(200, accepted)
    )
    with server.client() as client:
        client.track([{"type": "click", "user_id": "u", "item_id": "i"}])
    bodies = [request.content for request in server.requests]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (413, InvalidRequestError),
        (422, InvalidRequestError),
        (429, InvalidRequestError),
        (500, ServerError),
    ],
)
def test_client_errors_and_server_bugs_are_never_retried(status: int, kind: type[ClientError]):
    server = Server(error(status, "some_code", "why"), answer(200, FOR_YOU))
    with server.client() as client, pytest.raises(kind):
        client.for_you("u")
    assert len(server.requests) == 1 and server.sleeps == []


def test_writes_are_retried_too_because_they_are_safe_to_repeat():
    gone = error(503, "kafka_unavailable", "no ack")
    server = Server(gone, gone, answer(202, {"user_id": "u", "status": "accepted"}))
    with server.client() as client:
        client.forget_user("u")
    assert [r.method for r in server.requests] == ["DELETE"] * 3


def test_a_request_that_is_not_repeatable_is_never_retried():
    policy = RetryPolicy(retries=5, backoff=Backoff(0.1))
    once = Call("POST", "http://collector.test/v1/once", lambda body: body)
    again = Call("GET", "http://reader.test/v1/again", lambda body: body, repeatable=True)
    failure = Failure(503, "unavailable", "down")
    with pytest.raises(ServiceUnavailable) as caught:
        policy.pause(once, failure, attempts=1, draw=0.5)
    assert caught.value.attempts == 1
    assert 0.05 <= policy.pause(again, failure, attempts=1, draw=0.5) <= 0.1


def test_a_transport_failure_that_would_repeat_is_a_client_error_at_once():
    server = Server(httpx.UnsupportedProtocol("Request URL has an unsupported protocol"))
    with server.client() as client, pytest.raises(ClientError) as caught:
        client.for_you("u")
    assert type(caught.value) is ClientError and caught.value.error == "transport_error"
    assert len(server.requests) == 1


@pytest.mark.asyncio
async def test_the_async_client_retries_and_awaits_its_pauses():
    server = Server(connect_error(), error(504, "timeout", "gateway"), answer(200, FOR_YOU))
    async with server.async_client() as client:
        result = await client.for_you("u")
    assert result.stage == "personal"
    assert len(server.requests) == 3
    assert 0.05 <= server.sleeps[0] <= 0.1 and 0.1 <= server.sleeps[1] <= 0.2


@pytest.mark.asyncio
async def test_the_async_client_gives_up_after_its_retries():
    server = Server(error(503, "kafka_unavailable", "down"))
    async with server.async_client(retries=1) as client:
        with pytest.raises(ServiceUnavailable) as caught:
            await client.track({"type": "click", "user_id": "u", "item_id": "i"})
    assert caught.value.attempts == 2 and len(server.requests) == 2


RECS = {"recommendation_id": "home:1", "scenario": "home", "items": []}
STATS = {"scenario": "home", "window": "1d", "stages": {}, "items": []}
EVERY_METHOD = [
    ("track", ({"type": "click", "user_id": "u", "item_id": "i"},), batch([])),
    ("publish_items", ({"item_id": "i"},), batch([])),
    ("forget_user", ("u",), {"user_id": "u", "status": "accepted"}),
    ("recommend", ("home",), RECS),
    ("for_you", ("u",), FOR_YOU),
    ("related", ("i",), {"item_id": "i", "items": []}),
    ("trending", (), {"kind": "clicks", "window": "1h", "items": []}),
    ("rank", ("u", ["i"]), {"user_id": "u", "items": []}),
    ("scenarios", (), {"scenarios": []}),
    ("stats", ("home",), STATS),
]


@pytest.mark.parametrize(("method", "args", "body"), EVERY_METHOD, ids=[m[0] for m in EVERY_METHOD])
def test_every_method_of_the_api_is_safe_to_repeat_and_retried(method, args, body):
    server = Server(connect_error(), error(503, "unavailable", "busy"), answer(200, body))
    with server.client() as client:
        getattr(client, method)(*args)
    assert len(server.requests) == 3
    assert server.requests[0].content == server.requests[2].content
