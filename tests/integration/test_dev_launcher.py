"""``pipeline dev`` (what ``make run`` starts): serves trending from synthetic traffic behind the
API keys it draws and prints, stops clean."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pipeline.tools.local import free_port, port_in_use
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def dev_env(ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINE_")}
    env.update(
        PIPELINE_KAFKA_BOOTSTRAP=f"127.0.0.1:{ports['broker']}",
        PIPELINE_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
        PIPELINE_READER_PORT=str(ports["reader"]),
        PIPELINE_COLLECTOR_PORT=str(ports["collector"]),
        PIPELINE_TOPICS_FILE=str(ROOT / "topics.yaml"),
    )
    if "metrics" in ports:
        env["PIPELINE_WORKER_METRICS_PORT"] = str(ports["metrics"])
    return env


def start_dev(ports: dict[str, int], log_dir: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "dev", "--log-dir", str(log_dir), *args],
        env=dev_env(ports),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Output:
    """Collects a process's output lines in a thread, so a test can wait for one (bounded)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if not self.thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)


def test_dev_serves_trending_from_synthetic_traffic_and_stops_everything(tmp_path: Path):
    ports = {name: free_port() for name in ("broker", "redis", "reader", "collector")}
    dev = start_dev(ports, tmp_path / "logs", "--rate", "300")
    output = Output(dev)
    url = f"http://127.0.0.1:{ports['reader']}/v1/trending"
    items: list = []
    try:
        # No keys configured: dev draws a pair and prints them once, with the addresses.
        read_key = output.wait_for(r"^\s+read\s+(\S+)", 90).group(1)
        write_key = output.wait_for(r"^\s+write\s+(\S+)", 5).group(1)
        headers = {"X-API-Key": read_key}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not items:
            assert dev.poll() is None, output.text
            try:
                params = {"kind": "clicks", "window": "1h"}
                response = httpx.get(url, params=params, headers=headers, timeout=2)
                if response.status_code == 200:
                    items = response.json()["items"]
            except httpx.TransportError:
                pass
            if not items:
                time.sleep(0.5)
        assert items, "no trending items within a minute"
        assert all(item["item_id"].startswith("item-") and item["score"] > 0 for item in items)
        assert httpx.get(url, timeout=2).status_code == 401
        events = f"http://127.0.0.1:{ports['collector']}/v1/events"
        assert httpx.post(events, json=[], headers=headers, timeout=5).status_code == 403
        written = httpx.post(events, json=[], headers={"X-API-Key": write_key}, timeout=5)
        assert written.status_code == 400  # past the keys: an empty batch
    finally:
        dev.send_signal(signal.SIGTERM)
        dev.wait(timeout=60)
        output.thread.join(timeout=10)
    assert dev.returncode == 0, output.text
    assert "reader" in output.text and "stopping" in output.text
    assert output.text.count(read_key) == 1 and output.text.count(write_key) == 1
    for name, port in ports.items():
        assert not port_in_use("127.0.0.1", port), f"{name} still listens on {port}"


def test_dev_refuses_a_taken_port_and_names_the_setting(tmp_path: Path):
    ports = {name: free_port() for name in ("broker", "redis", "reader", "collector")}
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["reader"]))
        blocker.listen()
        dev = start_dev(ports, tmp_path / "logs")
        output, _ = dev.communicate(timeout=30)
    assert dev.returncode == 2
    assert f"port {ports['reader']}" in output and "PIPELINE_READER_PORT" in output
    for name in ("broker", "redis"):
        assert not port_in_use("127.0.0.1", ports[name]), f"{name} was started anyway"


def descendants(pid: int) -> dict[int, str]:
    """pid -> command name of every process below ``pid`` (children, grandchildren...)."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, _, rest = stat.partition("(")[2].rpartition(")")
            parents[int(entry.name)] = int(rest.split()[1])
            names[int(entry.name)] = name
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Any of the process's threads still running (zombies count as gone). The threads, not
    only the leader: a killed process's leader can be a zombie while its other threads are
    still exiting and its files (listening sockets) still open."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return False
    for thread in threads:
        try:
            stat = (thread / "stat").read_text()
        except FileNotFoundError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            return True
    return False


def wait_until_free(port: int, timeout_s: float) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 within ``timeout_s`` (bounded wait: the
    kernel closes a dead process's sockets as its last thread exits)."""
    deadline = time.monotonic() + timeout_s
    while port_in_use("127.0.0.1", port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only (/proc)")
def test_sigkill_of_dev_takes_every_process_down_and_frees_its_ports(tmp_path: Path):
    ports = {name: free_port() for name in ("broker", "redis", "reader", "collector", "metrics")}
    dev = start_dev(ports, tmp_path / "logs", "--rate", "100")
    output = Output(dev)
    family: dict[int, str] = {}
    try:
        output.wait_for(r"Ctrl-C stops everything", 90)
        family = descendants(dev.pid)
        # broker, redis, worker, reader, collector, traffic, and the guardian.
        assert len(family) >= 7, family
        dev.kill()
        dev.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = {pid: name for pid, name in family.items() if alive(pid)}
        assert not survivors, f"still running after dev was killed: {survivors}"
    finally:
        dev.kill()
        for pid in family:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    for name, port in ports.items():
        assert wait_until_free(port, 5), f"{name} still listens on {port}"
