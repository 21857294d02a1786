"""Processes started by ``pipeline.tools.local.spawn`` under a guardian never outlive their
parent: a SIGKILL of the parent takes the children and their own children down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# A parent that starts a shell under a guardian; the shell starts a grandchild (sleep) in its
# own process group and writes its pid to a file.
PARENT = """
import sys, time
from pipeline.tools.local import GuardedList, Guardian, spawn
started = GuardedList(Guardian())
started.append(spawn("shell", ["sh", "-c", "sleep 300 & echo $! > " + sys.argv[1] + "; wait"]))
print(started[0].process.pid, flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigkill_of_the_parent_kills_children_and_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(pid_file)], stdout=subprocess.PIPE, text=True
    )
    pids: list[int] = []
    try:
        assert parent.stdout is not None
        pids.append(int(parent.stdout.readline()))
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), 10)
        pids.append(int(pid_file.read_text()))
        assert all(alive(pid) for pid in pids)
        parent.kill()
        parent.wait(5)
        assert wait_until(lambda: not any(alive(pid) for pid in pids), 5), [
            pid for pid in pids if alive(pid)
        ]
    finally:
        parent.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
