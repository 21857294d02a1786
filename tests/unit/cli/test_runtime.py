"""The long-running commands' garbage-collection settings (in a child process: they are
process-wide)."""

from __future__ import annotations

import subprocess
import sys

from pipeline.cli.runtime import OLDER_COLLECTIONS_EVERY, YOUNG_COLLECTION_AFTER

PROBE = """
import gc
from pipeline.cli.runtime import tune_garbage_collection
before = gc.get_freeze_count()
tune_garbage_collection()
print(gc.get_threshold(), before, gc.get_freeze_count() > 1000)
"""


def test_collections_come_less_often_and_what_lives_at_start_is_never_walked_again() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split("\n")[0]
    every = OLDER_COLLECTIONS_EVERY
    assert out == f"({YOUNG_COLLECTION_AFTER}, {every}, {every}) 0 True"
