"""``pipeline dev``: the whole stack on one machine, in the foreground.

Starts the broker and Redis (embedded), applies topics, then runs the worker, reader,
collector and synthetic traffic as child processes with the same settings. Ctrl-C or
SIGTERM stops every process it started, in reverse order; so does any child dying. Should
dev itself die without stopping them (SIGKILL, a crash), they are killed at once
(``pipeline.tools.local``: parent-death signal and a guardian process), so their ports are
free for the next start.

API keys are on as in production: without configured keys it draws a write key and a read
key for the run, passes them to the services and prints them once, with the other
addresses (the only place a key is ever shown; docs/security.md).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

from pipeline.core.logs import configure_logging, mask_url
from pipeline.core.settings import Settings, secret_values, to_env
from pipeline.features.registry import AGENT_GROUPS, declared_topics
from pipeline.stream.kafka import apply_topics
from pipeline.tools.local import (
    GuardedList,
    Guardian,
    LocalStackError,
    ManagedProcess,
    free_port,
    port_in_use,
    spawn,
    start_broker,
    start_redis,
    wait_for_port,
)

# Every agent group in one worker process: enough for one machine.
DEV_AGENTS = ",".join(AGENT_GROUPS)
# The worker's /metrics when PIPELINE_WORKER_METRICS_PORT is not set (a free one if taken).
DEV_METRICS_PORT = 8002


def _host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0]
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port)


def planned_ports(settings: Settings) -> list[tuple[str, int, str]]:
    """(host, port, setting that changes it) of everything dev listens on."""
    broker_host, broker_port = _host_port(settings.kafka_bootstrap)
    redis = urlparse(settings.redis_url)
    ports = [
        (broker_host, broker_port, "PIPELINE_KAFKA_BOOTSTRAP"),
        (redis.hostname or "127.0.0.1", redis.port or 6379, "PIPELINE_REDIS_URL"),
        (settings.reader_host, settings.reader_port, "PIPELINE_READER_PORT"),
        (settings.collector_host, settings.collector_port, "PIPELINE_COLLECTOR_PORT"),
    ]
    if settings.worker_metrics_port:
        ports.append(
            (
                settings.worker_metrics_host,
                settings.worker_metrics_port,
                "PIPELINE_WORKER_METRICS_PORT",
            )
        )
    return ports


def check_ports(settings: Settings) -> list[str]:
    """One message per port that is already taken, naming the setting that moves it."""
    return [
        f"port {port} on {host} is already taken; set {setting} to use another port"
        for host, port, setting in planned_ports(settings)
        if port_in_use(host, port)
    ]


def with_demo(settings: Settings) -> Settings:
    """The demo page on (``/demo`` on the reader), and the reader's origins allowed by CORS:
    the page, served by the reader, calls the collector from the browser."""
    port = settings.reader_port
    hosts = [settings.reader_host] if settings.reader_host not in ("0.0.0.0", "::") else []
    if not hosts or settings.reader_host == "127.0.0.1":
        hosts += ["127.0.0.1", "localhost"]
    wanted = [
        f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        for host in dict.fromkeys(hosts)
    ]
    origins = list(settings.cors_origins) + [o for o in wanted if o not in settings.cors_origins]
    return settings.model_copy(update={"demo_page": True, "cors_origins": origins})


def with_metrics(settings: Settings) -> Settings:
    """The worker's metrics on: the configured port, else :data:`DEV_METRICS_PORT`, else
    (taken) any free port; the start banner shows it."""
    if settings.worker_metrics_port:
        return settings
    host = settings.worker_metrics_host
    port = DEV_METRICS_PORT if not port_in_use(host, DEV_METRICS_PORT) else free_port(host)
    return settings.model_copy(update={"worker_metrics_port": port})


def with_keys(settings: Settings) -> tuple[Settings, bool]:
    """``settings`` with a fresh write key and read key when none is configured (True), else
    unchanged (False): the embedded stack checks keys like a production one."""
    if settings.read_api_keys or settings.write_api_keys:
        return settings, False
    drawn = {
        "write_api_keys": [secrets.token_urlsafe(32)],
        "read_api_keys": [secrets.token_urlsafe(32)],
    }
    return settings.model_copy(update=drawn), True


def key_lines(settings: Settings, generated: bool, keys_file: Path | None = None) -> str:
    """What the start banner says about API keys: the drawn keys themselves, or only where
    the configured ones come from."""
    if not generated:
        return "  api keys   as configured (PIPELINE_WRITE_API_KEYS, PIPELINE_READ_API_KEYS)\n"
    return (
        "  api keys   drawn for this run; send one as the X-API-Key header (or ?api_key=)\n"
        f"    write    {settings.write_api_keys[0]}   (collector; may read too)\n"
        f"    read     {settings.read_api_keys[0]}   (reader)\n"
    ) + (f"    (. {keys_file} sets READ_KEY and WRITE_KEY in a shell)\n" if keys_file else "")


def write_keys_file(path: Path, settings: Settings) -> None:
    """The drawn keys as shell variables (``. .run/keys.env`` sets ``READ_KEY`` and
    ``WRITE_KEY`` for the README's examples), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f"READ_KEY={settings.read_api_keys[0]}\n")
        handle.write(f"WRITE_KEY={settings.write_api_keys[0]}\n")


def child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(to_env(settings))
    env["PIPELINE_TOPICS_FILE"] = str(Path(settings.topics_file).resolve())
    return env


def run_dev(settings: Settings, traffic_rate: float | None, log_dir: Path) -> int:
    """Run until interrupted; returns the process exit code."""
    settings = with_metrics(with_demo(settings))
    configure_logging(settings.log_format, "INFO", "dev", secret_values(settings))
    settings, generated_keys = with_keys(settings)
    problems = check_ports(settings)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    log_dir.mkdir(parents=True, exist_ok=True)
    keys_file = log_dir.parent / "keys.env"
    if generated_keys:
        write_keys_file(keys_file, settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    # Whatever ends dev (SIGKILL included), nothing it started outlives it: each child dies
    # with it (spawn) and the guardian kills the children's process groups.
    guardian = Guardian()
    started: list[ManagedProcess] = GuardedList(guardian)
    python = [sys.executable, "-m", "pipeline"]
    try:
        broker_host, broker_port = _host_port(settings.kafka_bootstrap)
        redis = urlparse(settings.redis_url)
        started.append(start_broker(broker_port, broker_host, log_dir / "broker.log"))
        started.append(
            start_redis(redis.port or 6379, redis.hostname or "127.0.0.1", log_dir / "redis.log")
        )
        topics = declared_topics(settings)
        created, _ = asyncio.run(apply_topics(settings.kafka_bootstrap, topics.specs))
        print(f"topics: {len(created)} created, {len(topics.specs)} declared")
        env = child_env(settings)
        started.append(
            spawn(
                "worker",
                [*python, "worker", "--agents", DEV_AGENTS],
                log_dir / "worker.log",
                env,
            )
        )
        started.append(spawn("reader", [*python, "reader"], log_dir / "reader.log", env))
        started.append(spawn("collector", [*python, "collector"], log_dir / "collector.log", env))
        for name, host, port in (
            ("reader", settings.reader_host, settings.reader_port),
            ("collector", settings.collector_host, settings.collector_port),
        ):
            process = next(p for p in started if p.name == name)
            wait_for_port(host, port, 30.0, process.process)
        if traffic_rate is not None:
            started.append(
                spawn(
                    "traffic",
                    [*python, "generate", "--kafka", "--rate", str(traffic_rate), "--seed", "1"],
                    log_dir / "traffic.log",
                    env,
                )
            )
        base = f"http://{settings.reader_host}:{settings.reader_port}"
        print(
            "\nrunning:\n"
            f"  broker     {settings.kafka_bootstrap}\n"
            f"  redis      {mask_url(settings.redis_url)}\n"
            f"  reader     {base}/v1/trending?kind=clicks&window=1h   (docs: {base}/docs)\n"
            f"  demo       {base}/demo\n"
            f"  collector  http://{settings.collector_host}:{settings.collector_port}/v1/events\n"
            f"  metrics    http://{settings.worker_metrics_host}:{settings.worker_metrics_port}"
            "/metrics   (worker)\n"
            f"  logs       {log_dir}/\n"
            + key_lines(settings, generated_keys, keys_file if generated_keys else None)
            + (
                f"  traffic    synthetic, {traffic_rate:.0f} events/s\n"
                if traffic_rate is not None
                else ""
            )
            + "Ctrl-C stops everything.",
            flush=True,
        )
        while not stop.wait(0.5):
            dead = [p for p in started if p.process.poll() is not None]
            if dead:
                for process in dead:
                    print(
                        f"error: {process.name} exited with code {process.process.returncode}; "
                        f"see {log_dir / (process.name + '.log')}",
                        file=sys.stderr,
                    )
                return 1
        return 0
    except LocalStackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        print("stopping...", file=sys.stderr, flush=True)
        for process in reversed(started):
            process.stop()
        guardian.release()
        if generated_keys:
            # The run's keys die with it.
            keys_file.unlink(missing_ok=True)
