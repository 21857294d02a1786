"""A headless Chromium driven through the Chrome DevTools Protocol (CDP) over a websocket.

Debian's ``chromium`` package (``make test`` installs it); no Playwright or Selenium. One
browser process per :func:`launch`, one page, stopped (with its process group) on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from pipeline.tools.local import free_port

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")


def chromium_binary() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class BrowserError(AssertionError):
    """A CDP call failed or a script threw; the message carries Chromium's description."""


class Page:
    """A CDP session on one page target: commands, evaluation and the events received."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.socket:
                message = json.loads(raw)
                future = self.pending.pop(message.get("id", -1), None)
                if future is not None and not future.done():
                    future.set_result(message)
                elif "method" in message:
                    self.events.append(message)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(BrowserError("the DevTools connection closed"))

    async def send(self, method: str, timeout_s: float = 15.0, **params: Any) -> dict[str, Any]:
        """One CDP command; its ``result``, or :class:`BrowserError` with the error."""
        command_id = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        await self.socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        message = await asyncio.wait_for(future, timeout_s)
        if "error" in message:
            raise BrowserError(f"{method}: {message['error']}")
        return message.get("result", {})

    async def evaluate(self, expression: str, timeout_s: float = 15.0) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise) and return its JSON value."""
        result = await self.send(
            "Runtime.evaluate",
            timeout_s=timeout_s,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
            userGesture=True,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script threw: {description}\n{self.console()}")
        return result["result"].get("value")

    async def navigate(self, url: str) -> None:
        """Open ``url`` and return once its load event fired."""
        loads = len([e for e in self.events if e["method"] == "Page.loadEventFired"])
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        await self.wait_until(
            lambda: len([e for e in self.events if e["method"] == "Page.loadEventFired"]) > loads,
            10.0,
            f"the load event of {url}",
        )

    async def wait_until(self, condition: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            await asyncio.sleep(0.05)

    async def wait_for_js(self, expression: str, timeout_s: float, what: str) -> Any:
        """Evaluate ``expression`` until it is truthy; its value, or a timeout naming ``what``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}\n{self.console()}"
                )
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """A real mouse click (press and release) at the centre of the first match."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView(); const r = e.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector!r} to click")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                clickCount=1,
            )

    def console(self) -> str:
        """Console messages and uncaught exceptions so far, for failure messages."""
        lines = []
        for event in self.events:
            if event["method"] == "Runtime.consoleAPICalled":
                args = event["params"].get("args", [])
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                lines.append(f"console.{event['params'].get('type')}: {text}")
            elif event["method"] == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details.get("text")
                lines.append(f"exception: {text}")
        return "\n".join(lines[-30:]) or "(no console output)"

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader


async def _page_socket_url(port: int, process: subprocess.Popen, timeout_s: float) -> str:
    """The websocket URL of the browser's first page, once DevTools answers."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrowserError(f"chromium exited with code {process.returncode}")
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await client.get(f"http://127.0.0.1:{port}/json/list")
                pages = [t for t in response.json() if t.get("type") == "page"]
                if pages and pages[0].get("webSocketDebuggerUrl"):
                    return pages[0]["webSocketDebuggerUrl"]
            await asyncio.sleep(0.1)
    raise BrowserError(f"chromium's DevTools did not answer on port {port} in {timeout_s:.0f} s")


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a reused id owned by someone else: not ours any more
        return False
    return True


def _stop(process: subprocess.Popen) -> None:
    """Stop the browser and every process of its group (zygote, renderers, GPU, network)."""
    group = process.pid  # start_new_session: the browser leads its own process group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
    # The browser has closed its profile; its helpers are disposable and none may outlive
    # the test.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.02)


@contextlib.asynccontextmanager
async def launch(profile_dir: Path, log_path: Path | None = None) -> AsyncIterator[Page]:
    """A headless Chromium on a blank page; the browser process group is stopped on exit."""
    binary = chromium_binary()
    if binary is None:
        raise BrowserError("chromium is not installed (apt-get install chromium; make test does)")
    port = free_port()
    argv = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--remote-debugging-port={port}",
        f"--user-data-dir={profile_dir}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "about:blank",
    ]
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    page: Page | None = None
    try:
        url = await _page_socket_url(port, process, 60.0)
        socket = await connect(url, max_size=None, open_timeout=10)
        page = Page(socket)
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        yield page
    finally:
        if page is not None:
            await page.close()
        _stop(process)
