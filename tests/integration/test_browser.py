"""The tracking script and the demo page in a real headless Chromium, against a real stack.

Broker and Redis (the ``services`` fixture), a worker running every agent group, the
collector and the reader (demo page on, CORS for the reader's origin, API keys enforced),
started as ``pipeline dev`` configures them (``with_demo``). Chromium is Debian's package,
driven through the DevTools protocol (tests/unit/web/chromium.py); ``make test`` installs it.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from pipeline.core.settings import Settings, load_settings
from pipeline.features.registry import declared_topics
from pipeline.stream.kafka import apply_topics
from pipeline.tools.dev import DEV_AGENTS, with_demo
from pipeline.tools.local import ManagedProcess, free_port, wait_for_port
from tests.conftest import ROOT, Services
from tests.integration.helpers import log_tail, pipeline_process, produce, wait_for
from tests.unit.web.chromium import Page, chromium_binary, launch

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed"),
]

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
DEMO_USER = "demo-user"
ITEMS = "#recommendations [data-streamrec-item]"
# Shown in the demo as text, never as markup.
MARKUP_TITLE = '<img src="x" onerror="window.injected = true">Atlas & maps'


@dataclass(frozen=True)
class Stack:
    settings: Settings
    reader: str
    collector: str
    api_key: str
    logs: Path

    def topic(self, event_type: str) -> str:
        return declared_topics(self.settings).for_event_type(event_type)

    def diagnostics(self) -> str:
        return "\n".join(
            f"--- {name}.log\n{log_tail(self.logs / f'{name}.log', 15)}"
            for name in ("worker", "reader", "collector")
        )


def seed_events(now: int) -> list[dict[str, Any]]:
    """Campers click lamp, tent and stove together (related items); readers make novel,
    poem and atlas the most clicked. A new user first sees trending (novel first); after
    clicking the lamp, tent and stove lead their list."""
    events: list[dict[str, Any]] = []

    def click(user: str, item: str, at: int) -> None:
        events.append(
            {
                "event_id": f"seed-{len(events)}",
                "type": "click",
                "user_id": user,
                "item_id": item,
                "timestamp": at,
            }
        )

    for n in range(12):
        for offset, item in enumerate(("lamp", "tent", "stove")):
            click(f"camper-{n}", item, now - 60_000 + offset * 1000)
    for item, readers in (("novel", 30), ("poem", 25), ("atlas", 20)):
        for n in range(readers):
            click(f"reader-{item}-{n}", item, now - 50_000)
    return events


def seed_items() -> list[tuple[bytes, dict[str, Any]]]:
    titles = {
        "lamp": "Lamp",
        "tent": "Tent",
        "stove": "Stove",
        "novel": "Novel",
        "poem": "Poem",
        "atlas": MARKUP_TITLE,
    }
    return [
        (item.encode(), {"item_id": item, "categories": [item], "title": title})
        for item, title in titles.items()
    ]


async def seed(settings: Settings) -> None:
    topics = declared_topics(settings)
    await apply_topics(settings.kafka_bootstrap, topics.specs)
    await produce(settings, topics.catalog.name, seed_items())
    events = seed_events(int(time.time() * 1000))
    await produce(
        settings, topics.for_event_type("click"), [(e["user_id"].encode(), e) for e in events]
    )


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tag = f"t{uuid.uuid4().hex[:10]}"
    key = secrets.token_urlsafe(24)
    settings = with_demo(
        load_settings(
            kafka_bootstrap=services.kafka_bootstrap,
            redis_url=services.redis_url,
            topic_prefix=f"{tag}.",
            key_prefix=tag,
            app_id=tag,
            topics_file=ROOT / "topics.yaml",
            scenarios_file=ROOT / "scenarios.yaml",
            batch_ms=50,
            reader_port=free_port(),
            collector_port=free_port(),
            write_api_keys=[key],
        )
    )
    asyncio.run(seed(settings))
    logs = tmp_path_factory.mktemp("browser-stack")
    started: list[ManagedProcess] = []
    try:
        for name, args in (
            ("worker", ["worker", "--agents", DEV_AGENTS]),
            ("reader", ["reader"]),
            ("collector", ["collector"]),
        ):
            started.append(pipeline_process(settings, args, logs / f"{name}.log"))
        for process, port in zip(
            started[1:], (settings.reader_port, settings.collector_port), strict=True
        ):
            wait_for_port("127.0.0.1", port, 30.0, process.process)
        yield Stack(
            settings,
            reader=f"http://127.0.0.1:{settings.reader_port}",
            collector=f"http://127.0.0.1:{settings.collector_port}",
            api_key=key,
            logs=logs,
        )
    finally:
        for process in reversed(started):
            process.stop()


async def find_events(
    stack: Stack, event_type: str, match: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    """The first event of ``event_type``'s topic that ``match`` accepts, read from Kafka."""
    consumer = AIOKafkaConsumer(
        stack.topic(event_type),
        bootstrap_servers=stack.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = orjson.loads(record.value)
                    if match(event):
                        return event
    finally:
        await consumer.stop()
    raise AssertionError(f"no matching {event_type} event in Kafka within {timeout_s:.0f} s")


async def wait_for_trending(stack: Stack) -> None:
    """Until the reader's trending list holds the whole seed: the demo's first list is then
    stable, and any change the page shows comes from the click."""
    async with httpx.AsyncClient(base_url=stack.reader, timeout=2.0) as client:

        async def trending() -> list[str]:
            try:
                response = await client.get(
                    "/v1/trending",
                    params={"kind": "clicks", "window": "1d", "n": 10},
                    headers={"X-API-Key": stack.api_key},
                )
            except httpx.TransportError:
                return []
            return [i["item_id"] for i in response.json().get("items", [])]

        await wait_for(
            trending,
            lambda ids: ids[:3] == ["novel", "poem", "atlas"] and len(ids) == 6,
            30,
            "trending to hold the seed",
        )


async def open_demo(page: Page, stack: Stack) -> None:
    """Open the demo and wait until it showed its first list (so it calls init no more)."""
    await page.navigate(f"{stack.reader}/demo")
    await page.wait_for_js("!!window.streamrec", 10, "the script loaded from the collector")
    await page.wait_for_js(
        "document.getElementById('recommendations').hasAttribute('data-demo-generation')",
        10,
        "the demo's first list",
    )


async def shown(page: Page) -> dict[str, Any]:
    return await page.evaluate(
        "({ids: [...document.querySelectorAll('" + ITEMS + "')]"
        ".map(e => e.getAttribute('data-streamrec-item')),"
        " rid: document.querySelector('#recommendations [data-streamrec-rid]')"
        "?.getAttribute('data-streamrec-rid'),"
        " generation: Number(document.getElementById('recommendations')"
        ".getAttribute('data-demo-generation')),"
        " status: document.getElementById('status').textContent})"
    )


@pytest.mark.asyncio
async def test_demo_shows_items_sends_the_click_and_shows_the_new_list(
    stack: Stack, tmp_path: Path
) -> None:
    async with launch(tmp_path / "profile", tmp_path / "chromium.log") as page:
        try:
            await wait_for_trending(stack)
            await open_demo(page, stack)
            # A new user sees trending.
            await page.wait_for_js(
                f"document.querySelectorAll('{ITEMS}').length >= 6", 10, "the demo's items"
            )
            before = await shown(page)
            assert before["rid"].startswith("home:"), before
            scenarios = await page.evaluate(
                "[...document.querySelectorAll('#scenario option')].map(o => o.value)"
            )
            assert {"home", "product_page"} <= set(scenarios), scenarios
            assert before["ids"][0] == "novel", before
            # Catalog titles are text: the markup shows as characters and never runs.
            atlas = await page.evaluate(
                "(() => { const e = document.querySelector('[data-streamrec-item=\"atlas\"]');"
                " return {text: e.textContent, images: e.querySelectorAll('img').length,"
                " injected: window.injected === true}; })()"
            )
            assert atlas["text"].startswith(MARKUP_TITLE) and atlas["images"] == 0, atlas
            assert not atlas["injected"]

            await page.click('#recommendations [data-streamrec-item="lamp"]')
            click = await find_events(
                stack,
                "click",
                lambda e: e["user_id"] == DEMO_USER and e.get("item_id") == "lamp",
                15,
            )
            # The item's own id: the response's id and the stage that placed the item.
            assert click["recommendation_id"].startswith(before["rid"] + ":")
            assert UUID.fullmatch(click["event_id"]) and click["type"] == "click"
            impression = await find_events(
                stack,
                "impression",
                lambda e: (
                    e["user_id"] == DEMO_USER
                    and e.get("recommendation_id") == click["recommendation_id"]
                ),
                15,
            )
            assert "lamp" in impression["items"] and set(impression["items"]) <= set(before["ids"])

            # The page asks the reader again until the list differs, and shows the new one.
            await page.wait_for_js(
                f"Number(document.getElementById('recommendations')"
                f".getAttribute('data-demo-generation')) > {before['generation']}",
                20,
                "the demo to show a changed list",
            )
            after = await shown(page)
            assert after["ids"] != before["ids"] and after["rid"] != before["rid"], after
            assert after["ids"][0] in {"tent", "stove"}, after
            assert "the list changed" in after["status"], after

            # A later purchase of the clicked item carries the recommendation it came from.
            buy = await page.evaluate(
                "new Promise(resolve => {"
                " document.addEventListener('streamrec:track', e => resolve(e.detail.event),"
                " {once: true});"
                " streamrec.track({type: 'buy', item_id: 'lamp'}); })"
            )
            assert buy["recommendation_id"] == click["recommendation_id"]
            assert buy["user_id"] == DEMO_USER
        except AssertionError:
            print(page.console())
            print(stack.diagnostics())
            raise


@pytest.mark.asyncio
async def test_track_fills_the_event_and_pagehide_sends_the_queue_as_a_beacon(
    stack: Stack, tmp_path: Path
) -> None:
    async with launch(tmp_path / "profile", tmp_path / "chromium.log") as page:
        await open_demo(page, stack)
        config = await page.evaluate(
            "JSON.parse(document.getElementById('streamrec-demo-config').textContent)"
        )
        assert config == {"collector": stack.collector, "reader": "", "apiKey": stack.api_key}
        before_ms = int(time.time() * 1000)
        # An anonymous visitor: the id comes from localStorage; the event is sent by fetch
        # with the key header (a CORS preflight to the collector).
        tracked = await page.evaluate(
            "(async () => {"
            f" streamrec.init({json.dumps(config)});"
            " let seen = null;"
            " document.addEventListener('streamrec:track', e => { seen = e.detail.event; },"
            " {once: true});"
            " const answer = await streamrec.track({type: 'click', item_id: 'poem'});"
            " return {event: seen, answer: answer,"
            " anonymous: localStorage.getItem('streamrec.anonymous_id')}; })()"
        )
        event, answer = tracked["event"], tracked["answer"]
        assert tracked["anonymous"].startswith("anon-")
        assert UUID.fullmatch(tracked["anonymous"][len("anon-") :])
        assert event["user_id"] == tracked["anonymous"]
        assert UUID.fullmatch(event["event_id"])
        assert before_ms <= event["timestamp"] <= int(time.time() * 1000)
        assert answer == {
            "accepted": 1,
            "rejected": 0,
            "results": [{"index": 0, "event_id": event["event_id"], "status": "accepted"}],
        }
        # Without crypto.randomUUID the fallback still makes version-4 UUIDs.
        fallback = await page.evaluate(
            "crypto.randomUUID = undefined;"
            " streamrec.track({type: 'click', item_id: 'poem'}).then(a => a.results[0].event_id)"
        )
        assert UUID.fullmatch(fallback) and fallback != event["event_id"]

        # A page context (init's context) goes with every event, under the event's own keys,
        # and with every recommendation request as the `context` parameter.
        contexts = await page.evaluate(
            "(async () => {"
            f" streamrec.init({{...{json.dumps(config)}, context: {{page: 'demo', slot: 1}}}});"
            " let seen = null;"
            " document.addEventListener('streamrec:track', e => { seen = e.detail.event; },"
            " {once: true});"
            " await streamrec.track({type: 'click', item_id: 'poem', context: {slot: 2}});"
            " const urls = []; const original = window.fetch;"
            " window.fetch = (url, init) => { urls.push(String(url)); return original(url, init); };"
            " try { await streamrec.recommend('home', {context: {device: 'tablet'}}); }"
            " catch (error) {}"
            " window.fetch = original;"
            " return {event: seen.context, url: urls[0]}; })()"
        )
        assert contexts["event"] == {"page": "demo", "slot": 2}
        query = parse_qs(urlsplit(contexts["url"]).query)
        assert json.loads(query["context"][0]) == {"page": "demo", "slot": 1, "device": "tablet"}
        await page.evaluate(f"streamrec.init({json.dumps(config)})")

        # Events still queued when the page goes away leave with sendBeacon: text/plain, the
        # key in the query string; the collector accepts them.
        beacon = await page.evaluate(
            "(async () => {"
            " streamrec.flush();"  # what the page queued before: only this event is pending
            " const calls = [];"
            " const original = navigator.sendBeacon.bind(navigator);"
            " navigator.sendBeacon = (url, data) => { calls.push({url, data});"
            " return original(url, data); };"
            " const pending = streamrec.track({type: 'click', item_id: 'tent',"
            " user_id: 'beacon-user'});"
            " window.dispatchEvent(new Event('pagehide'));"
            " const answer = await pending;"
            " return {answer, count: calls.length, url: calls[0].url,"
            " type: calls[0].data.type, body: JSON.parse(await calls[0].data.text())}; })()"
        )
        assert beacon["answer"] == {"beacon": True} and beacon["count"] == 1
        assert beacon["url"] == f"{stack.collector}/v1/events?api_key={stack.api_key}"
        assert beacon["type"] == "text/plain"
        [sent] = beacon["body"]
        assert sent["user_id"] == "beacon-user" and sent["item_id"] == "tent"
        arrived = await find_events(stack, "click", lambda e: e["event_id"] == sent["event_id"], 15)
        assert arrived["user_id"] == "beacon-user" and arrived["timestamp"] == sent["timestamp"]


@pytest.mark.asyncio
async def test_login_default_rendering_and_attributes_on_the_pages_own_markup(
    stack: Stack, tmp_path: Path
) -> None:
    async with launch(tmp_path / "profile", tmp_path / "chromium.log") as page:
        await open_demo(page, stack)
        config = await page.evaluate(
            "JSON.parse(document.getElementById('streamrec-demo-config').textContent)"
        )
        # Logging in from the anonymous id sends a login event naming it; switching between
        # two known users merges nothing.
        login = await page.evaluate(
            "(async () => {"
            f" streamrec.init({json.dumps(config)});"
            " const anonymous = streamrec.userId();"
            " let seen = null;"
            " document.addEventListener('streamrec:track', e => { seen = e.detail.event; },"
            " {once: true});"
            " const answer = await streamrec.setUser('shopper-1');"
            " const again = await streamrec.setUser('shopper-2');"
            " return {anonymous, event: seen, answer, again, now: streamrec.userId()}; })()"
        )
        assert login["event"]["type"] == "login" and login["event"]["user_id"] == "shopper-1"
        assert login["event"]["previous_user_id"] == login["anonymous"]
        assert login["answer"]["accepted"] == 1, login
        assert login["again"] is None and login["now"] == "shopper-2"

        # The default rendering: buttons tagged with the item, titles as text, the container
        # tagged with the recommendation id, one impression sent.
        rendered = await page.evaluate(
            "(async () => {"
            " const box = document.createElement('div'); box.id = 'box';"
            " document.body.appendChild(box);"
            " const answer = await streamrec.render(box, {recommendation_id: 'home:r1',"
            " items: [{item_id: 'tent', item: {title: '<b>Tent</b>'}}, {item_id: 'poem'}]});"
            " const buttons = [...box.querySelectorAll('ul.streamrec-items > li > button')];"
            " return {answer, rid: box.getAttribute('data-streamrec-rid'),"
            " items: buttons.map(b => [b.getAttribute('data-streamrec-item'), b.textContent]),"
            " bold: box.querySelectorAll('b').length}; })()"
        )
        assert rendered["rid"] == "home:r1" and rendered["bold"] == 0
        assert rendered["items"] == [["tent", "<b>Tent</b>"], ["poem", "poem"]]
        assert rendered["answer"]["accepted"] == 1, rendered

        # A page's own markup needs only the two attributes; a click inside a link is sent
        # at once as a beacon (a navigation would cancel a fetch).
        await page.evaluate(
            "(() => {"
            " window.beacons = [];"
            " const original = navigator.sendBeacon.bind(navigator);"
            " navigator.sendBeacon = (url, data) => {"
            " window.beacons.push(data.text()); return original(url, data); };"
            " const section = document.createElement('section');"
            " section.setAttribute('data-streamrec-rid', 'home:own');"
            " const article = document.createElement('article');"
            " article.setAttribute('data-streamrec-item', 'stove');"
            " const link = document.createElement('a'); link.href = '#stove';"
            " const label = document.createElement('span'); label.id = 'own-label';"
            " label.textContent = 'Stove'; link.appendChild(label);"
            " article.appendChild(link); section.appendChild(article);"
            " document.body.prepend(section); })()"
        )
        await page.click("#own-label")
        bodies = await page.evaluate("Promise.all(window.beacons)")
        assert len(bodies) == 1, bodies
        [click] = json.loads(bodies[0])
        assert click["type"] == "click" and click["item_id"] == "stove"
        assert click["recommendation_id"] == "home:own" and click["user_id"] == "shopper-2"
        arrived = await find_events(
            stack, "click", lambda e: e["event_id"] == click["event_id"], 15
        )
        assert arrived["recommendation_id"] == "home:own"
