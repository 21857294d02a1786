"""``pipeline dev`` (what ``make run`` starts): serves trending from synthetic traffic, stops clean."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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


def test_dev_serves_trending_from_synthetic_traffic_and_stops_everything(tmp_path: Path):
    ports = {name: free_port() for name in ("broker", "redis", "reader", "collector")}
    dev = start_dev(ports, tmp_path / "logs", "--rate", "300")
    url = f"http://127.0.0.1:{ports['reader']}/v1/trending"
    items: list = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not items:
            assert dev.poll() is None, dev.stdout.read() if dev.stdout else ""
            try:
                response = httpx.get(url, params={"kind": "clicks", "window": "1h"}, timeout=2)
                if response.status_code == 200:
                    items = response.json()["items"]
            except httpx.TransportError:
                pass
            if not items:
                time.sleep(0.5)
        assert items, "no trending items within a minute"
        assert all(item["item_id"].startswith("item-") and item["score"] > 0 for item in items)
    finally:
        dev.send_signal(signal.SIGTERM)
        output, _ = dev.communicate(timeout=60)
    assert dev.returncode == 0, output
    assert "reader" in output and "stopping" in output
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
