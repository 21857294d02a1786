"""A worker's handlers load every compiled kernel before it consumes (``Handler.warm``),
and ``pipeline evaluate`` before its timer starts (``load_kernels``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh process (numba loads a kernel on first use, and this process may have): the
# public compiled kernels (private helpers are compiled into the kernels that call them)
# with and without a compiled signature, before and after ``WARM``.
SCRIPT = """
from pipeline.core.keys import Keys
from pipeline.core.settings import load_settings
from pipeline.features.personal import freshness, kernels
from pipeline.features.ranking import kernels as ranking_kernels
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.stream.app import make_lanes

settings = load_settings()
lanes = make_lanes(settings, Keys("warm"), list(AGENT_GROUPS), declared_topics(settings))
found = [
    getattr(module, name)
    for module in (kernels, freshness, ranking_kernels)
    for name in dir(module)
    if name[0] != "_" and hasattr(getattr(module, name), "signatures")
]
before = sum(1 for kernel in found if kernel.signatures)
WARM
print(len(found), before, sum(1 for kernel in found if kernel.signatures))
"""

WARMS = {
    "handlers": "for lane in lanes:\n    lane.handler.warm()",
    "evaluate": (
        "from pipeline.features.personal.config import personal_config\n"
        "from pipeline.features.personal.warm import load_kernels\n"
        "load_kernels(personal_config(settings))"
    ),
}


@pytest.mark.parametrize("warm", sorted(WARMS))
def test_every_kernel_is_loaded_before_the_first_event(warm: str) -> None:
    script = SCRIPT.replace("WARM", WARMS[warm])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    total, before, after = map(int, done.stdout.split())
    assert total >= 11
    assert before == 0
    # evaluate replays the personal engine alone: the click model's kernel is not its own.
    assert after == (total if warm == "handlers" else total - 1)
