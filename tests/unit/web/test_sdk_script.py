"""The tracking script (pipeline/web/sdk.js) is valid JavaScript of the ES2017 level it
promises, and so is the demo page's script, checked by real engines: ``node --check`` when
node is installed, and Chromium (compile, then run the SDK on a blank page) when chromium is
(``make test`` installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.web.routes import asset
from tests.unit.web.chromium import chromium_binary, launch

SDK = asset("sdk.js").decode("utf-8")
# The demo page's own script (the one <script> without a type attribute).
DEMO_SCRIPT = asset("demo.html").decode("utf-8").split("<script>\n", 1)[1].split("</script>")[0]
BROKEN = "(function () { var x = ; })();"
# Syntax newer than ES2017, which the script promises to avoid (older browsers, no build step).
NEWER_SYNTAX = {
    "optional chaining": re.compile(r"\?\.(?!\d)"),
    "nullish coalescing": re.compile(r"\?\?"),
    "object spread or rest": re.compile(r"\.\.\."),
    "catch without binding": re.compile(r"catch\s*\{"),
    "private fields": re.compile(r"\s#\w+\s*[=(;]"),
}


def node_check(source: str, tmp_path: Path) -> tuple[bool, str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the Chromium check covers the script)")
    script = tmp_path / "script.js"
    script.write_text(source, encoding="utf-8")
    done = subprocess.run([node, "--check", str(script)], capture_output=True, text=True)
    return done.returncode == 0, done.stderr


def test_node_accepts_the_scripts_and_rejects_a_broken_one(tmp_path: Path) -> None:
    for source in (SDK, DEMO_SCRIPT):
        ok, message = node_check(source, tmp_path)
        assert ok, message
    # The check can fail: a syntax error is reported.
    broken_ok, broken_message = node_check(BROKEN, tmp_path)
    assert not broken_ok and "SyntaxError" in broken_message


@pytest.mark.asyncio
@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")
async def test_chromium_compiles_and_runs_the_script(tmp_path: Path) -> None:
    async with launch(tmp_path / "profile") as page:
        compiled = await page.send(
            "Runtime.compileScript", expression=SDK, sourceURL="sdk.js", persistScript=False
        )
        assert "exceptionDetails" not in compiled, compiled
        demo = await page.send(
            "Runtime.compileScript",
            expression=DEMO_SCRIPT,
            sourceURL="demo.js",
            persistScript=False,
        )
        assert "exceptionDetails" not in demo, demo
        broken = await page.send(
            "Runtime.compileScript", expression=BROKEN, sourceURL="x.js", persistScript=False
        )
        assert "SyntaxError" in broken["exceptionDetails"]["exception"]["description"]
        await page.evaluate(SDK)
        api = await page.evaluate(
            "Object.keys(window.streamrec).filter(k => typeof streamrec[k] === 'function').sort()"
        )
        assert api == ["flush", "init", "recommend", "render", "setUser", "track", "userId"]


@pytest.mark.parametrize("name", sorted(NEWER_SYNTAX))
def test_the_script_uses_no_syntax_newer_than_es2017(name: str) -> None:
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", SDK, flags=re.S)
    found = NEWER_SYNTAX[name].search(code)
    assert found is None, f"{name} at: {code[max(0, found.start() - 40) : found.end() + 40]!r}"
