"""A worker's handlers load every compiled kernel before it consumes (``Handler.warm``),
with the signatures its batches use, and ``pipeline evaluate`` loads the personal engine's
before its timer starts (``load_kernels``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# In a fresh process (numba loads a kernel on first use, and this process may have): the
# compiled signatures of every public kernel (private helpers are compiled into the kernels
# that call them) before ``WARM``, after it, and after every group planned a small batch
# (clicks, a buy, a rating, an impression) as a worker's first batch would: every group
# that reads events.
SCRIPT = """
import asyncio, json, time
from pipeline.core.events import event_from_dict
from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.personal import freshness, kernels
from pipeline.features.ranking import kernels as ranking_kernels
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.store.memory import MemoryStore
from pipeline.stream.app import make_lanes
from pipeline.stream.handler import EventHandler

settings = load_settings()
lanes = make_lanes(settings, Keys("warm"), list(AGENT_GROUPS), declared_topics(settings))
modules = {"personal": (kernels, freshness), "ranking": (ranking_kernels,)}

def signatures():
    return {
        group: sorted(
            f"{name}{signature}"
            for module in found
            for name in dir(module)
            if name[0] != "_" and hasattr(getattr(module, name), "signatures")
            for signature in getattr(module, name).signatures
        )
        for group, found in modules.items()
    }

def kernel_count(group):
    return sum(
        1
        for module in modules[group]
        for name in dir(module)
        if name[0] != "_" and hasattr(getattr(module, name), "signatures")
    )

before = signatures()
WARM
warmed = signatures()
now = int(time.time() * 1000)
raw = [
    {"event_id": "e1", "type": "click", "user_id": "u1", "item_id": "a", "timestamp": now},
    {"event_id": "e2", "type": "click", "user_id": "u1", "item_id": "b", "timestamp": now + 1},
    {"event_id": "e3", "type": "buy", "user_id": "u2", "item_id": "a", "timestamp": now + 2},
    {"event_id": "e4", "type": "rate", "user_id": "u2", "item_id": "b", "value": 4,
     "timestamp": now + 3},
    {"event_id": "e5", "type": "impression", "user_id": "u1", "items": ["a", "b", "c"],
     "timestamp": now + 4},
    {"event_id": "e6", "type": "click", "user_id": "u1", "item_id": "c", "timestamp": now + 5,
     "context": {"device": "mobile"}},
]
events = [event_from_dict(body) for body in raw]

async def first_batch():
    store = MemoryStore()
    for lane in lanes:
        if isinstance(lane.handler, EventHandler):
            lane.handler.owns_every_partition(True)
            await store.apply(await lane.handler.plan(store, events))

asyncio.run(first_batch())
print(json.dumps({
    "counts": {group: kernel_count(group) for group in modules},
    "before": before, "warmed": warmed, "after_batch": signatures(),
}))
"""

WARMS = {
    "handlers": "for lane in lanes:\n    lane.handler.warm()",
    "evaluate": (
        "from pipeline.features.personal.config import personal_config\n"
        "from pipeline.features.personal.warm import load_kernels\n"
        "load_kernels(personal_config(settings))"
    ),
}


def measured(warm: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.replace("WARM", WARMS[warm])],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return json.loads(done.stdout)


def kernels_with_a_signature(signatures: list[str]) -> int:
    return len({signature.split("(")[0] for signature in signatures})


def test_the_handlers_load_every_kernel_a_first_batch_uses() -> None:
    found = measured("handlers")
    assert found["counts"]["personal"] >= 10 and found["counts"]["ranking"] >= 1
    for group, count in found["counts"].items():
        assert found["before"][group] == []
        assert kernels_with_a_signature(found["warmed"][group]) == count
        # The batch compiled nothing more: warm() loaded the signatures batches use.
        assert found["after_batch"][group] == found["warmed"][group]


@pytest.mark.parametrize("warm", ["evaluate"])
def test_evaluate_loads_every_kernel_of_the_personal_engine(warm: str) -> None:
    found = measured(warm)
    personal = found["counts"]["personal"]
    assert found["before"]["personal"] == []
    assert kernels_with_a_signature(found["warmed"]["personal"]) == personal
    # evaluate replays the personal engine alone: the click model's kernel is not its own.
    assert found["warmed"]["ranking"] == []
