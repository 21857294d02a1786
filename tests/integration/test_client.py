"""pipeline.client against a real collector and reader (uvicorn on free ports, real broker
and Redis underneath) and a real worker: events tracked through the client come back as a
for-you list."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pipeline.api.collector import create_collector_app
from pipeline.api.reader import create_reader_app
from pipeline.client import (
    AsyncClient,
    AuthError,
    Client,
    NotFoundError,
    RejectedError,
    ScenarioStats,
)
from pipeline.core.settings import Settings
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import free_port
from tests.integration.helpers import log_tail, pipeline_process, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

# A valid id that needs percent-encoding in a path ("/" and "@").
SHOPPER = "web/shopper@example.org"


@contextmanager
def serving(app: Any, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the app on port {port} did not start")
        time.sleep(0.02)  # polling a flag uvicorn sets once it listens
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def services(settings: Settings) -> Iterator[tuple[str, str]]:
    with (
        serving(create_collector_app(settings)) as collector,
        serving(create_reader_app(settings)) as reader,
    ):
        yield collector, reader


def history(now: int) -> list[dict[str, Any]]:
    """Twenty campers bought a tent, then a stove; twenty readers clicked a novel. No
    event_id: the client fills them in. Timestamps given, so the order is the story's."""
    events: list[dict[str, Any]] = []
    for u in range(20):
        camper = f"camper-{u}"
        events.append(
            {"type": "buy", "user_id": camper, "item_id": "tent", "timestamp": now - 4000}
        )
        events.append(
            {"type": "buy", "user_id": camper, "item_id": "stove", "timestamp": now - 3000}
        )
        events.append({"type": "click", "user_id": f"reader-{u}", "item_id": "novel"})
    return events


async def test_events_tracked_through_the_client_come_back_as_a_for_you_list(
    isolated: Settings, tmp_path: Path
):
    await apply_topics(isolated.kafka_bootstrap, declared_topics(isolated).specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(isolated, ["worker", "--agents", "personal,trending"], log)
    now = int(time.time() * 1000)
    try:
        with services(isolated) as (collector_url, reader_url):
            with Client(collector_url, reader_url) as client:
                tracked = client.track(history(now))
                assert (tracked.accepted, tracked.rejected) == (60, 0)
                assert all(len(event_id) == 32 for event_id in tracked.accepted_ids)
                assert len(set(tracked.accepted_ids)) == 60
                # The shopper's own purchase: event_id and timestamp both filled in.
                mine = client.track({"type": "buy", "user_id": SHOPPER, "item_id": "tent"})
                assert mine.accepted == 1

                mixed = client.track(
                    [
                        {"type": "click", "user_id": "reader-0", "item_id": "novel"},
                        {"type": "rate", "user_id": "reader-0", "item_id": "novel"},
                    ]
                )
                assert (mixed.accepted, mixed.rejected) == (1, 1)
                assert "rate" in mixed.rejections[1]
                with pytest.raises(RejectedError) as caught:
                    client.track([{"type": "click", "item_id": "novel"}])
                assert caught.value.reasons == ("user_id is required",)

            async with AsyncClient(collector_url, reader_url) as reader:
                try:
                    for_you = await wait_for(
                        lambda: reader.for_you(SHOPPER, n=5),
                        lambda answer: [i.item_id for i in answer.items][:1] == ["stove"],
                        60,
                        "stove leading the shopper's for-you list",
                    )
                except AssertionError:
                    print(log_tail(log))
                    raise
                assert for_you.user_id == SHOPPER
                assert for_you.stage in ("personal", "cold_start")
                assert "tent" not in [item.item_id for item in for_you.items]
                assert "tent" in for_you.items[0].source.get("source_items", [])

                related = await reader.related("tent", n=3, relation="also_bought")
                assert [item.item_id for item in related.items][:1] == ["stove"]
                trending = await wait_for(
                    lambda: reader.trending(kind="clicks", window="1h", n=3),
                    lambda answer: [i.item_id for i in answer.items][:1] == ["novel"],
                    30,
                    "the novel trending by clicks",
                )
                assert trending.kind == "clicks" and trending.items[0].score > 0
                ranked = await reader.rank(SHOPPER, ["stove", "novel"], {"device": "mobile"})
                assert sorted(item.item_id for item in ranked.items) == ["novel", "stove"]
                unknown = await reader.for_you("nobody-yet")
                assert unknown.stage == "fallback"

                # Forgetting the shopper (DELETE /v1/users/{id}) removes the list.
                assert await reader.forget_user(SHOPPER) is None
                forgotten = await wait_for(
                    lambda: reader.for_you(SHOPPER, n=5),
                    lambda answer: answer.stage == "fallback",
                    30,
                    "the shopper's list gone after forget_user",
                )
                assert forgotten.user_id == SHOPPER
    finally:
        worker.stop()


async def test_scenarios_are_listed_served_and_counted_through_the_client(
    isolated: Settings, tmp_path: Path
):
    await apply_topics(isolated.kafka_bootstrap, declared_topics(isolated).specs)
    log = tmp_path / "worker.log"
    worker = pipeline_process(isolated, ["worker", "--agents", "catalog,trending"], log)
    try:
        with services(isolated) as (collector_url, reader_url):
            with Client(collector_url, reader_url) as client:
                items = [{"item_id": f"item-{i}", "title": f"Item {i}"} for i in range(3)]
                published = client.publish_items(items)
                assert published.accepted_ids == ["item-0", "item-1", "item-2"]
                with pytest.raises(RejectedError) as rejected:
                    client.publish_items({"title": "no id"})
                assert len(rejected.value.reasons) == 1
                clicks = [
                    {"type": "click", "user_id": f"visitor-{u}", "item_id": f"item-{u % 3}"}
                    for u in range(12)
                ]
                assert client.track(clicks).accepted == 12
                names = [scenario.name for scenario in client.scenarios()]
                assert "home" in names and "product_page" in names
                with pytest.raises(NotFoundError) as caught:
                    client.recommend("no_such_page")
                assert caught.value.error == "unknown_scenario"
                # Campaign names answer too, marked as no scenario of the file.
                campaign = client.stats("no_such_page")
                assert campaign.totals.clicks == 0 and campaign.defined is False

            async with AsyncClient(collector_url, reader_url) as reader:
                try:
                    served = await wait_for(
                        lambda: reader.recommend("home", user_id=SHOPPER, n=5, fields=["title"]),
                        lambda answer: (
                            len(answer.items) == 3
                            and all(item.item and item.item.get("title") for item in answer.items)
                        ),
                        60,
                        "the clicked items, with their titles, in the home scenario",
                    )
                except AssertionError:
                    print(log_tail(log))
                    raise
                assert served.scenario == "home" and served.user_id == SHOPPER
                assert served.recommendation_id.startswith("home:")
                assert {item.item_id for item in served.items} == {"item-0", "item-1", "item-2"}
                assert all(item.source.get("stage") for item in served.items)
                titles = {item.item_id: (item.item or {}).get("title") for item in served.items}
                assert titles == {"item-0": "Item 0", "item-1": "Item 1", "item-2": "Item 2"}

                async def serve_then_count() -> ScenarioStats:
                    # The reader writes its served counts at most once a second, when a
                    # later request comes: keep serving while waiting.
                    await reader.recommend("home", user_id=SHOPPER, n=5)
                    return await reader.stats("home", window="1d")

                stats = await wait_for(
                    serve_then_count,
                    lambda answer: answer.totals.served >= 3,
                    30,
                    "the served items counted in the home scenario's stats",
                )
                assert stats.scenario == "home" and stats.window == "1d"
    finally:
        worker.stop()


async def test_api_keys_are_sent_and_refusals_become_auth_errors(isolated: Settings):
    read_key, write_key = "read-key-0123456789abcdef", "write-key-0123456789abcdef"
    keyed = isolated.model_copy(update={"read_api_keys": [read_key], "write_api_keys": [write_key]})
    await apply_topics(keyed.kafka_bootstrap, declared_topics(keyed).specs)
    event = {"type": "click", "user_id": "visitor", "item_id": "item-0"}
    with services(keyed) as (collector_url, reader_url):
        with Client(collector_url, reader_url) as anonymous, pytest.raises(AuthError) as caught:
            anonymous.for_you("visitor")
        assert (caught.value.status, caught.value.error) == (401, "unauthorized")

        with Client(collector_url, reader_url, api_key=read_key) as reading:
            assert reading.for_you("visitor").stage == "fallback"
            with pytest.raises(AuthError) as caught:
                reading.track(event)
            assert (caught.value.status, caught.value.error) == (403, "forbidden")
            assert read_key not in str(caught.value) and read_key not in repr(reading)

        async with AsyncClient(collector_url, reader_url, api_key=write_key) as writing:
            assert (await writing.track(event)).accepted == 1
            assert (await writing.for_you("visitor")).user_id == "visitor"
