"""The long-running commands' garbage-collection settings (in a child process: they are
process-wide)."""

from __future__ import annotations

import subprocess
import sys

from pipeline.cli.runtime import OLDER_COLLECTIONS_EVERY, YOUNG_COLLECTION_AFTER

PROBE = """
import gc
from pipeline.cli.runtime import tune_garbage_collection
before = gc.get_threshold()
tune_garbage_collection()
print(gc.get_threshold(), before)
"""


def test_collections_come_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    every = OLDER_COLLECTIONS_EVERY
    assert out == f"({YOUNG_COLLECTION_AFTER}, {every}, {every}) (700, 10, 10)"
