"""Compiled inner loops: numba's ``njit`` with its machine code cached where it can be.

The models' hot loops over a few floats per step (the factor model's SGD step, the click
model's AdaGrad steps) spend most of their time in per-call overhead when written with
numpy, and in the interpreter when written in Python; compiled, they cost microseconds.

A function is compiled on first use (about a second) and cached next to its module, or in
``NUMBA_CACHE_DIR`` (the container image sets ``/tmp/numba-cache``), so a process pays the
compilation once per installation. Where no cache location is writable (a read-only
installation and home), every process compiles on first use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from numba import njit

F = TypeVar("F", bound=Callable[..., object])


def compiled(function: F) -> F:
    """``function`` compiled by numba, with its machine code cached when a cache location
    is writable (numba refuses ``cache=True`` at decoration when none is)."""
    try:
        return cast(F, njit(cache=True, nogil=True)(function))
    except RuntimeError:
        return cast(F, njit(nogil=True)(function))
