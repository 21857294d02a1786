"""The client is light: importing it loads none of the services' or agents' frameworks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("fastapi", "starlette", "faust", "aiokafka", "redis", "pydantic", "numpy", "river")


def test_importing_the_client_loads_no_framework():
    code = f"import sys, pipeline.client\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == ""
