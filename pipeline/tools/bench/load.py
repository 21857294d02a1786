"""HTTP load from another process: wrk when installed (Debian package ``wrk``), else a small
keep-alive client in Python (slower: it can limit what a fast endpoint shows).

``python -m pipeline.tools.bench.load URL SECONDS CONNECTIONS [PATH...]`` prints one JSON
object: ``{"requests_per_s", "p50_ms", "p99_ms", "errors", "tool"}``. With paths, the requests
go to them in turn (on the URL's host) instead of to the URL.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

import orjson


def run_load(
    url: str, seconds: float, connections: int, paths: list[str] | None = None
) -> dict[str, Any]:
    """Load ``url`` for ``seconds`` with ``connections`` kept-alive connections; with
    ``paths`` (path and query), each connection requests them in turn instead."""
    if shutil.which("wrk"):
        return _wrk(url, seconds, connections, paths or [])
    argv = [
        sys.executable,
        "-m",
        "pipeline.tools.bench.load",
        url,
        str(seconds),
        str(connections),
        *(paths or []),
    ]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=seconds + 60)
    return dict(orjson.loads(done.stdout))


# wrk's request hook: the paths in turn.
WRK_PATHS = """paths = {%s}
turn = 0
request = function()
  turn = turn %% #paths + 1
  return wrk.format("GET", paths[turn])
end
"""


def _wrk(url: str, seconds: float, connections: int, paths: list[str]) -> dict[str, Any]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if paths:
            script.write(WRK_PATHS % ", ".join(orjson.dumps(path).decode() for path in paths))
            script.flush()
            argv[1:1] = ["-s", script.name]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(rate.group(1)) if rate else 0.0,
        "p50_ms": _percentile(out, "50%"),
        "p99_ms": _percentile(out, "99%"),
        "errors": int(errors.group(1)) if errors else 0,
        "tool": "wrk",
    }


def _percentile(out: str, label: str) -> float:
    found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if not found:
        return 0.0
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000.0 if unit == "us" else value * 1000.0 if unit == "s" else value


async def _connection(
    host: str, port: int, requests: list[bytes], until: float, out: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    errors = 0
    turn = 0
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(requests[turn])
            turn = (turn + 1) % len(requests)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            out.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
    finally:
        writer.close()
    return errors


async def _python_load(
    url: str, seconds: float, connections: int, paths: list[str]
) -> dict[str, Any]:
    parts = urlsplit(url)
    targets = paths or [parts.path + (f"?{parts.query}" if parts.query else "")]
    requests = [f"GET {t} HTTP/1.1\r\nHost: {parts.hostname}\r\n\r\n".encode() for t in targets]
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    errors = await asyncio.gather(
        *(
            _connection(parts.hostname or "127.0.0.1", parts.port or 80, requests, until, latencies)
            for _ in range(connections)
        )
    )
    latencies.sort()

    def at(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000.0

    return {
        "requests_per_s": len(latencies) / seconds,
        "p50_ms": at(0.5) if latencies else 0.0,
        "p99_ms": at(0.99) if latencies else 0.0,
        "errors": sum(errors),
        "tool": "python",
    }


if __name__ == "__main__":
    result = asyncio.run(
        _python_load(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    )
    print(orjson.dumps(result).decode())
