"""Reproducible draws of the factor model: initial vectors and sampled negatives.

Both are functions of ids (and the model's seed) alone, so every worker, every replay and
every platform draws the same: a restarted worker learns exactly what the first run did.
"""

from __future__ import annotations

import functools
import hashlib
import zlib

import numpy as np

from pipeline.features.personal.kernels import normal_from_words


def stable_vector(key: str, n: int, std: float, seed: int) -> np.ndarray:
    """A reproducible initial vector for an id: the same on every worker, every replay and
    every platform. Normal(0, ``std``) draws by Box-Muller from SHAKE-256 of (``seed``,
    ``key``): about a tenth of the cost of seeding a numpy generator per id (50-100 µs),
    which every new user and item pays, and logs with many one-off users have many."""
    raw = hashlib.shake_256(seed.to_bytes(8, "little", signed=True) + key.encode()).digest(
        8 * ((n + 1) // 2)
    )
    return normal_from_words(np.frombuffer(raw, dtype="<u4"), n, std)


def keyed_picks(key: str, seed: int, n: int, count: int) -> list[int]:
    """``n`` positions in ``range(count)`` drawn for ``key`` (an event id): multiplicative
    hashing of (``seed``, ``key``, j), cheap, uniform enough and reproducible."""
    base = zlib.crc32(key.encode(), seed) + 1
    return [(base * spread >> 7) % count for spread in _spreads(n)]


@functools.cache
def _spreads(n: int) -> tuple[int, ...]:
    """The multipliers of ``n`` picks: ``(2 j + 1) * 2654435761``."""
    return tuple((2 * j + 1) * 2654435761 for j in range(n))
