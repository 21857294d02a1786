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

    State is the counts of each live generation (the current one and the next), so a
    restarted worker reloads it exactly. Ranking within one generation needs no decay step:
    the current generation's table stays in rank order as it changes (``top`` never sorts).
    The next one is read only once it is current, so it is kept as plain counts and ranked
    then, once: every event adds to both, and keeping two tables in order cost twice one.
    """

    def __init__(self, half_life_s: float) -> None:
        self.half_life_s = half_life_s
        self.current: int | None = None
        self._ranked = RankedScores()
        # Generations after the current one: key -> count, summed in the order of the adds.
        self._later: dict[int, dict[str, float]] = {}
        # Changes with every add and load: what readers cache derived rankings by.
        self.version = 0

    def add(self, key: str, weight: float, timestamp_ms: int) -> list[tuple[int, float]]:
        """Count one event; returns the (generation, amount) increments made, for persistence."""
        self.version += 1
        gen = generation(timestamp_ms, self.half_life_s)
        current = self.current
        if current is None or gen > current:
            current = self._advance(gen)
        made = []
        for target, amount in spread(weight, timestamp_ms, self.half_life_s):
            if target < current:
                continue  # a late event for a generation nobody reads any more
            if target == current:
                self._ranked.add(key, amount)
            else:
                counts = self._later.setdefault(target, {})
                counts[key] = counts.get(key, 0.0) + amount
            made.append((target, amount))
        return made

    def _advance(self, gen: int) -> int:
        """Make ``gen`` the current generation (returned): its counts are ranked now;
        earlier ones go."""
        self.current = gen
        self._ranked = RankedScores(self._later.pop(gen, None))
        self._later = {g: counts for g, counts in self._later.items() if g > gen}
        return gen

    def load(self, generations: dict[int, dict[str, float]]) -> None:
        """Replace the state with stored generations (the current one and the next)."""
        self.version += 1
        live = {g: dict(counts) for g, counts in generations.items() if counts}
        self.current = None
        self._ranked = RankedScores()
        self._later = live
        if live:
            self._advance(min(live))

    @property
    def scores(self) -> RankedScores:
        """The current generation's counts, ranked (empty before any event or load)."""
        return self._ranked

    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` highest counts of the current generation, ties by key."""
        return self._ranked.top(n)
