"""``POST /v1/users`` (pipeline.api.users) without servers: the collector gets an in-memory
producer; records are validated one by one and produced to the users topic, stamped."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio
import yaml

from pipeline.api.collector import create_collector_app
from pipeline.core.settings import load_settings
from pipeline.core.users import user_from_dict
from tests.unit.api.helpers import client_of
from tests.unit.api.test_collector import (
    PREFIX,
    TOPICS_FILE,
    DownProducer,
    ListProducer,
    collector_settings,
)

pytestmark = pytest.mark.asyncio
USER = {"user_id": "shop/u1", "attributes": {"country": "DE", "interests": ["run", "hike"]}}


@pytest.fixture
def producer() -> ListProducer:
    return ListProducer()


@pytest_asyncio.fixture
async def collector(producer: ListProducer) -> AsyncIterator[httpx.AsyncClient]:
    settings = collector_settings(collector_max_events=3)
    async for client in client_of(create_collector_app(settings, producer=producer)):
        yield client


async def test_a_record_goes_to_the_users_topic_keyed_by_user_and_stamped(
    collector, producer
) -> None:
    before = int(time.time() * 1000)
    response = await collector.post("/v1/users", json=USER)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accepted": 1,
        "rejected": 0,
        "results": [{"index": 0, "user_id": "shop/u1", "status": "accepted"}],
    }
    [(topic, key, value)] = producer.sent
    assert (topic, key) == (f"{PREFIX}catalog.users", b"shop/u1")
    sent = user_from_dict(orjson.loads(value))
    assert sent.attributes == USER["attributes"]
    assert sent.updated_at_ms is not None and before <= sent.updated_at_ms <= time.time() * 1000
    # A record's own updated_at is kept.
    await collector.post("/v1/users", json={**USER, "updated_at": 1_767_225_600_000})
    assert orjson.loads(producer.sent[1][2])["updated_at"] == 1_767_225_600_000


async def test_each_record_is_validated_on_its_own(collector, producer) -> None:
    bad = {"user_id": "u2", "attributes": {"bad name": 1}}
    response = await collector.post("/v1/users", json=[USER, bad, {"attributes": {}}])
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert body["results"][1]["reason"].startswith("attribute name")
    assert body["results"][2]["reason"] == "user_id is required"
    assert len(producer.sent) == 1
    response = await collector.post("/v1/users", json=[bad])
    assert response.status_code == 400 and response.json()["accepted"] == 0


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{", 400, "invalid_json"),
        (b"[]", 400, "empty_batch"),
        (orjson.dumps([USER] * 4), 413, "too_many_users"),
    ],
)
async def test_bad_bodies(collector, producer, body: bytes, status: int, error: str) -> None:
    response = await collector.post("/v1/users", content=body)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert producer.sent == []


async def test_kafka_down_is_503_and_nothing_is_accepted() -> None:
    app = create_collector_app(collector_settings(), producer=DownProducer())
    async for client in client_of(app):
        response = await client.post("/v1/users", json=USER)
        assert response.status_code == 503
        assert response.json()["error"] == "kafka_unavailable"


async def test_without_a_users_topic_the_route_says_so(tmp_path: Path) -> None:
    document = yaml.safe_load(Path(TOPICS_FILE).read_text())
    del document["topics"]["catalog.users"]
    for spec in document["topics"].values():
        spec["agents"] = [a for a in spec.get("agents") or [] if a != "users"]
    topics = tmp_path / "topics.yaml"
    topics.write_text(yaml.safe_dump(document))
    producer = ListProducer()
    settings = load_settings(topics_file=topics, topic_prefix=PREFIX)
    app = create_collector_app(settings, producer=producer)
    async for client in client_of(app):
        response = await client.post("/v1/users", json=USER)
        assert response.status_code == 503
        assert response.json()["error"] == "no_users_topic"
    assert producer.sent == []
