"""Forward decay with generations: old events fade with no periodic rescan of any key.

Forward decay (Cormode et al., 2009) lets every event add a fixed amount to a score and
still have old events fade. An event at time ``t`` adds ``weight * 2 ** ((t - L) / h)`` where
``h`` is the half-life and ``L`` a landmark; read at time ``T``, ``score * 2 ** ((L - T) / h)``
is the decayed count "now".

The stored value grows without bound as ``t - L`` grows, so the landmark moves in steps:
generation ``g`` uses ``L_g = g * GENERATION_HALF_LIVES * h``. Each event is added to its own
generation and to the next one, so when readers switch to generation ``g + 1`` it already
holds at least ``GENERATION_HALF_LIVES`` half-lives of history; what it lacks has decayed by
``2 ** -GENERATION_HALF_LIVES`` and does not matter. Stored values stay within
``2 ** +-GENERATION_HALF_LIVES`` (exact in a double). Old generations expire by TTL.

Trending, segments and the cold-start popularity of the personal model all use this.
"""

from __future__ import annotations

import math

from pipeline.core.ranked import RankedScores

GENERATION_HALF_LIVES = 32


# Half-life -> (generation, its landmark, the next one's) of the latest time asked: events
# come in time order, so nearly every call falls in the generation of the call before.
_LAST: dict[float, tuple[int, float, float]] = {}


def generation(timestamp_ms: float, half_life_s: float) -> int:
    """Generation whose landmark lies at or before ``timestamp_ms``: the largest ``g`` with
    ``landmark_ms(g) <= timestamp_ms``, exactly as :func:`landmark_ms` computes it (a plain
    division can round across the boundary when the half-life is not a round number)."""
    last = _LAST.get(half_life_s)
    if last is not None and last[1] <= timestamp_ms < last[2]:
        return last[0]
    period_ms = GENERATION_HALF_LIVES * half_life_s * 1000.0
    gen = math.floor(timestamp_ms / period_ms)
    if landmark_ms(gen, half_life_s) > timestamp_ms:
        gen -= 1
    elif landmark_ms(gen + 1, half_life_s) <= timestamp_ms:
        gen += 1
    _LAST[half_life_s] = (gen, landmark_ms(gen, half_life_s), landmark_ms(gen + 1, half_life_s))
    return gen


def landmark_ms(gen: int, half_life_s: float) -> float:
    return gen * GENERATION_HALF_LIVES * half_life_s * 1000.0


def forward_weight(weight: float, timestamp_ms: int, gen: int, half_life_s: float) -> float:
    """Amount an event adds to generation ``gen``'s stored score."""
    exponent = (timestamp_ms - landmark_ms(gen, half_life_s)) / (half_life_s * 1000.0)
    return weight * 2.0**exponent


def decayed(stored: float, gen: int, half_life_s: float, now_ms: float) -> float:
    """Stored score of generation ``gen`` as a decayed weighted count at ``now_ms``."""
    exponent = (landmark_ms(gen, half_life_s) - now_ms) / (half_life_s * 1000.0)
    return stored * 2.0**exponent


def expire_at_s(gen: int, half_life_s: float) -> int:
    """Unix time after which generation ``gen`` is never read again (plus a margin)."""
    end_ms = landmark_ms(gen + 1, half_life_s)
    return int(end_ms / 1000.0 + half_life_s) + 1


def spread(weight: float, timestamp_ms: int, half_life_s: float) -> list[tuple[int, float]]:
    """``(generation, amount)`` an event adds: to its own generation and to the next."""
    gen = generation(timestamp_ms, half_life_s)
    return [
        (gen, forward_weight(weight, timestamp_ms, gen, half_life_s)),
        (gen + 1, forward_weight(weight, timestamp_ms, gen + 1, half_life_s)),
    ]


class DecayedCounts:
    """Forward-decayed counts per key in memory, mirrored into Redis hashes by increments.

    State is one ranked score table per live generation (the current one and the next), so
    a restarted worker reloads it exactly. Ranking within one generation needs no decay step,
    and the tables stay in rank order as they change (``top`` never sorts).
    """

    def __init__(self, half_life_s: float) -> None:
        self.half_life_s = half_life_s
        self.current: int | None = None
        self.generations: dict[int, RankedScores] = {}
        # Changes with every add and load: what readers cache derived rankings by.
        self.version = 0

    def add(self, key: str, weight: float, timestamp_ms: int) -> list[tuple[int, float]]:
        """Count one event; returns the (generation, amount) increments made, for persistence."""
        self.version += 1
        gen = generation(timestamp_ms, self.half_life_s)
        if self.current is None or gen > self.current:
            self.current = gen
            self.generations = {g: v for g, v in self.generations.items() if g >= gen}
        made = []
        for target, amount in spread(weight, timestamp_ms, self.half_life_s):
            if target < self.current:
                continue  # a late event for a generation nobody reads any more
            scores = self.generations.get(target)
            if scores is None:
                scores = self.generations[target] = RankedScores()
            scores.add(key, amount)
            made.append((target, amount))
        return made

    def load(self, generations: dict[int, dict[str, float]]) -> None:
        """Replace the state with stored generations (the current one and the next)."""
        self.version += 1
        self.generations = {g: RankedScores(v) for g, v in generations.items() if v}
        self.current = min(self.generations) if self.generations else None

    @property
    def scores(self) -> RankedScores:
        if self.current is None:
            return RankedScores()
        return self.generations.get(self.current) or RankedScores()

    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` highest counts of the current generation, ties by key."""
        return self.scores.top(n)
