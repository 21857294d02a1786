"""``pipeline dev`` turns the worker's metrics on (pipeline.tools.dev.with_metrics)."""

from __future__ import annotations

import socket

from pipeline.core.settings import load_settings
from pipeline.tools.dev import DEV_METRICS_PORT, planned_ports, with_metrics
from pipeline.tools.local import port_in_use


def test_dev_turns_worker_metrics_on_and_checks_their_port() -> None:
    settings = with_metrics(load_settings(worker_metrics_port=0))
    port = settings.worker_metrics_port
    assert port != 0
    if not port_in_use("127.0.0.1", DEV_METRICS_PORT):
        assert port == DEV_METRICS_PORT
    assert ("127.0.0.1", port, "PIPELINE_WORKER_METRICS_PORT") in planned_ports(settings)


def test_a_configured_metrics_port_is_kept() -> None:
    assert with_metrics(load_settings(worker_metrics_port=12345)).worker_metrics_port == 12345


def test_a_taken_default_port_gives_a_free_one() -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", DEV_METRICS_PORT))
            sock.listen()
        except OSError:
            pass  # already taken by something else: the same situation
        port = with_metrics(load_settings(worker_metrics_port=0)).worker_metrics_port
    assert port not in (0, DEV_METRICS_PORT)
