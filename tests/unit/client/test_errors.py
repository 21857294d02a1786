"""Error mapping (one hierarchy, the server's code and detail) and the API key's secrecy."""

from __future__ import annotations

import asyncio
import logging
import traceback

import httpx
import pytest

from pipeline.client import (
    AsyncClient,
    AuthError,
    Client,
    ClientError,
    InvalidRequestError,
    NotFoundError,
    RejectedError,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
)
from tests.unit.client.helpers import KEY, READER, Server, answer, batch, connect_error, error

EVENT = {"type": "click", "user_id": "u", "item_id": "i"}


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "unauthorized", AuthError),
        (403, "forbidden", AuthError),
        (404, "unknown_scenario", NotFoundError),
        (413, "body_too_large", InvalidRequestError),
        (422, "invalid_parameter", InvalidRequestError),
        (500, "internal", ServerError),
    ],
)
def test_an_error_answer_becomes_its_exception_with_status_code_and_detail(
    status: int, code: str, kind: type[ClientError]
):
    server = Server(error(status, code, "the reason"))
    with server.client() as client, pytest.raises(kind) as caught:
        client.recommend("home", user_id="u")
    exc = caught.value
    assert isinstance(exc, ClientError)
    assert (exc.status, exc.error, exc.detail) == (status, code, "the reason")
    assert exc.method == "GET" and exc.url == f"{READER}/v1/recommendations"
    assert str(exc) == f"GET {READER}/v1/recommendations: {status} {code}: the reason"


def test_an_error_page_that_is_not_json_keeps_its_text_as_the_detail():
    server = Server(httpx.Response(404, text="<html>Not Found</html>"))
    with server.client() as client, pytest.raises(NotFoundError) as caught:
        client.stats("home")
    assert caught.value.error is None
    assert caught.value.detail == "<html>Not Found</html>"


def test_every_event_rejected_raises_rejected_error_with_the_reasons():
    body = batch(
        [
            {"index": 0, "status": "rejected", "reason": "user_id is required"},
            {"index": 1, "status": "rejected", "reason": "value (the rating, 1-5) is required"},
        ]
    )
    server = Server(answer(400, body))
    with server.client() as client, pytest.raises(RejectedError) as caught:
        client.track([{"type": "click", "item_id": "i"}, {"type": "rate", "user_id": "u"}])
    exc = caught.value
    assert isinstance(exc, InvalidRequestError)
    assert exc.reasons == ("user_id is required", "value (the rating, 1-5) is required")
    assert exc.result.rejected == 2 and exc.result.accepted == 0
    assert exc.status == 400 and exc.error == "rejected"
    assert "[1] value (the rating, 1-5) is required" in str(exc)
    assert len(server.requests) == 1


def test_every_item_rejected_raises_rejected_error_too():
    body = batch([{"index": 0, "status": "rejected", "reason": "item_id is required"}])
    server = Server(answer(400, body))
    with server.client() as client, pytest.raises(RejectedError) as caught:
        client.publish_items({"title": "no id"})
    assert caught.value.reasons == ("item_id is required",)
    assert "every item was rejected" in caught.value.detail


def test_a_400_without_results_is_an_invalid_request_not_a_rejection():
    server = Server(error(400, "empty_batch", "the list holds no events"))
    with server.client() as client, pytest.raises(InvalidRequestError) as caught:
        client.track(EVENT)
    assert not isinstance(caught.value, RejectedError)
    assert caught.value.error == "empty_batch"


def test_a_partly_rejected_batch_returns_the_results_by_index():
    body = batch(
        [
            {"index": 0, "event_id": "e0", "status": "accepted"},
            {"index": 1, "status": "rejected", "reason": "timestamp lies in the future"},
            {"index": 2, "event_id": "e2", "status": "accepted"},
        ]
    )
    server = Server(answer(200, body))
    with server.client() as client:
        result = client.track([EVENT, EVENT, EVENT])
    assert (result.accepted, result.rejected) == (2, 1)
    assert result.rejections == {1: "timestamp lies in the future"}
    assert result.accepted_ids == ["e0", "e2"]
    assert [r.accepted for r in result.results] == [True, False, True]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>captive portal</html>"),
        answer(200, {"user_id": "u"}),
        answer(200, {"user_id": "u", "stage": "personal", "items": [{"score": 1}]}),
        answer(200, ["not", "an", "object"]),
    ],
)
def test_a_success_answer_of_the_wrong_shape_is_an_unexpected_response(response: httpx.Response):
    server = Server(response)
    with server.client() as client, pytest.raises(UnexpectedResponse) as caught:
        client.for_you("u")
    assert caught.value.status == 200
    assert len(server.requests) == 1


def failures() -> list[ClientError]:
    """One exception of every kind, raised by a client holding KEY."""
    rejected = batch([{"index": 0, "status": "rejected", "reason": "bad"}])
    scripts = [
        error(401, "unauthorized", "a valid X-API-Key is required"),
        error(403, "forbidden", "a read key cannot write"),
        error(503, "kafka_unavailable", "down"),
        connect_error(),
        answer(400, rejected),
        httpx.Response(200, text="oops"),
    ]
    raised = []
    for step in scripts:
        server = Server(step)
        with server.client(retries=1) as client:
            try:
                client.track(EVENT)
            except ClientError as exc:
                raised.append(exc)
    assert len(raised) == len(scripts)
    return raised


def test_the_key_is_in_no_repr_no_message_no_traceback_and_no_log(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    server = Server(answer(200, {"user_id": "u", "items": []}))
    client = Client(api_key=KEY, transport=server.transport())
    aclient = AsyncClient(api_key=KEY)
    assert KEY not in repr(client) and KEY not in str(client)
    assert KEY not in repr(aclient)
    assert "api_key=<set>" in repr(client)
    for exc in failures():
        shown = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        assert not [text for text in shown if KEY in text], type(exc).__name__
    assert caplog.records, "the retries should have been logged"
    assert KEY not in caplog.text
    client.close()
    asyncio.run(aclient.close())


@pytest.mark.asyncio
async def test_async_errors_map_the_same_way():
    server = Server(error(403, "forbidden", "a read key cannot write"))
    async with server.async_client() as client:
        with pytest.raises(AuthError) as caught:
            await client.forget_user("u")
    assert (caught.value.status, caught.value.error) == (403, "forbidden")
    assert KEY not in str(caught.value)


def test_a_503_without_retries_left_is_service_unavailable_with_the_server_code():
    server = Server(error(503, "kafka_unavailable", "Kafka did not acknowledge in 5 s"))
    with server.client(retries=0) as client, pytest.raises(ServiceUnavailable) as caught:
        client.publish_items({"item_id": "i"})
    assert caught.value.error == "kafka_unavailable"
    assert "Kafka did not acknowledge" in caught.value.detail
