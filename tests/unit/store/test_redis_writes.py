"""The arguments of scripted writes: a run's amounts converted together are those each write
converts alone (a run of one)."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.store.base import Writes
from pipeline.store.redis_writes import numbers, run_args, script_args


@pytest.mark.parametrize("kind", ["zincr_trim", "hincr_float"])
def test_a_runs_arguments_are_each_writes_own(kind: str) -> None:
    rng = random.Random(5)
    writes = Writes()
    for k in range(60):
        amounts = {
            f"m{j}": rng.choice([1.0, -1.0, 2.0, 0.1 + j, 1e-300, math.inf, -math.inf, 3.5e12])
            for j in range(rng.randrange(1, 9))
        }
        if kind == "zincr_trim":
            writes.zincr_trim(f"key{k}", amounts, 5, 10)
        else:
            writes.hincr_float(f"key{k}", amounts)
    run = [op for op in writes.ops if op[0] == kind]
    assert len(run) == 60
    assert run_args(run) == [script_args(op) for op in run]
    # The text reads back as the same doubles, infinities too.
    texts = [text for args in run_args(run) for text in args[-1::-2] if isinstance(text, str)]
    assert any(text in ("inf", "-inf") for text in texts)
    assert numbers([1e-300, 0.1]) == ["1e-300", "0.1"]


def test_other_writes_are_their_own_arguments() -> None:
    writes = Writes().set("a", b"x", 30).set("b", b"y", None)
    run = [op for op in writes.ops if op[0] == "set"]
    assert run_args(run) == [script_args(op) for op in run] == [[30, b"x"], [0, b"y"]]
