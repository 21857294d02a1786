"""Compiled loops (numba) work wherever the package is installed."""

from __future__ import annotations

import pytest
from numba import njit

from pipeline.core.compiled import compiled


def test_a_kernel_compiles_where_its_code_cannot_be_cached() -> None:
    """numba refuses to cache a function with no writable cache location (here: one with no
    source file; in production a read-only installation and home): it is compiled anyway."""
    namespace: dict[str, object] = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)
    function = namespace["add_one"]
    with pytest.raises(RuntimeError, match="cannot cache"):
        njit(cache=True)(function)
    assert compiled(function)(2) == 3
