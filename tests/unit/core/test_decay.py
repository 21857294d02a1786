"""Forward decay with generations (pipeline.core.decay): the identities the readers rely on."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipeline.core.decay import (
    GENERATION_HALF_LIVES,
    DecayedCounts,
    decayed,
    expire_at_s,
    forward_weight,
    generation,
    landmark_ms,
)
from pipeline.core.events import MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS
from pipeline.core.settings import DEFAULT_WINDOWS

FAST = settings(max_examples=150, deadline=None, database=None)
REL = 1e-9
TS = 1_700_000_000_000

half_lives = st.sampled_from(sorted(DEFAULT_WINDOWS.values()) + [1.0, 60.0, 0.5]) | st.floats(
    min_value=1.0, max_value=1e7
)
timestamps = st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS - 1)
# Zero or normal magnitudes: subnormal weights lose the relative precision under test.
weights = st.just(0.0) | st.floats(min_value=1e-6, max_value=1e6)


# --- forward decay -------------------------------------------------------------------------


@FAST
@given(weights, timestamps, half_lives, st.floats(min_value=-4.0, max_value=64.0), st.booleans())
def test_decayed_forward_weight_is_the_plain_decayed_weight(
    weight: float, t: int, half_life: float, ago: float, next_gen: bool
) -> None:
    """Whichever of its two generations an event sits in, it reads back as w * 2**-(age/h)."""
    gen = generation(t, half_life) + int(next_gen)
    now = t + ago * half_life * 1000.0
    stored = forward_weight(weight, t, gen, half_life)
    expected = weight * 2.0 ** ((t - now) / (half_life * 1000.0))
    assert math.isclose(decayed(stored, gen, half_life, now), expected, rel_tol=REL)


@FAST
@given(timestamps, half_lives)
def test_generation_landmark_brackets_the_timestamp(t: int, half_life: float) -> None:
    gen = generation(t, half_life)
    # Up to the rounding of the landmark product (a few units in the last place).
    slack = 4 * math.ulp(float(t))
    assert landmark_ms(gen, half_life) <= t + slack
    assert t < landmark_ms(gen + 1, half_life) + slack
    assert gen >= 0


@FAST
@given(
    weights,
    half_lives,
    timestamps,
    st.lists(st.floats(min_value=-1.0, max_value=2.0), min_size=2, max_size=6),
)
def test_decayed_score_is_monotone_in_now_and_never_negative(
    stored: float, half_life: float, anchor: int, positions: list[float]
) -> None:
    """Read anywhere from a generation before to a generation after its own period."""
    gen = generation(anchor, half_life)
    period = GENERATION_HALF_LIVES * half_life * 1000.0
    nows = sorted(landmark_ms(gen, half_life) + position * period for position in positions)
    scores = [decayed(stored, gen, half_life, now) for now in nows]
    assert all(score >= 0.0 for score in scores)
    assert all(later <= earlier for earlier, later in zip(scores, scores[1:], strict=False))


@FAST
@given(half_lives, timestamps, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_stored_values_stay_within_the_generation_bound(
    half_life: float, anchor: int, fraction: float
) -> None:
    """Events in [landmark(g-1), landmark(g+1)) add between 2**-32 and 2**32 times their weight."""
    gen = generation(anchor, half_life) + 1
    low = math.ceil(landmark_ms(gen - 1, half_life))
    high = math.ceil(landmark_ms(gen + 1, half_life))  # exclusive
    t = min(high - 1, low + math.floor(fraction * (high - low)))
    stored = forward_weight(1.0, t, gen, half_life)
    # Exact when landmarks are whole milliseconds; otherwise a landmark's rounding (a few
    # ulps of t) shifts the exponent by ulps / half-life.
    rel = 4 * math.ulp(float(t)) / (half_life * 1000.0) + REL
    bound = 2.0**GENERATION_HALF_LIVES
    assert (1.0 - rel) / bound <= stored <= bound * (1.0 + rel)


@FAST
@given(st.sampled_from(sorted(DEFAULT_WINDOWS.values())), timestamps)
def test_stored_values_are_exact_at_the_bounds_for_whole_second_half_lives(
    half_life: float, anchor: int
) -> None:
    gen = generation(anchor, half_life)
    assert forward_weight(1.0, landmark_ms(gen - 1, half_life), gen, half_life) == 2.0**-32
    assert forward_weight(1.0, landmark_ms(gen, half_life), gen, half_life) == 1.0
    end = landmark_ms(gen + 1, half_life)
    assert forward_weight(1.0, end - 1, gen, half_life) < 2.0**32


def test_stored_value_bounds_at_the_edges() -> None:
    half_life = 3600.0
    gen = generation(TS, half_life)
    assert forward_weight(1.0, landmark_ms(gen - 1, half_life), gen, half_life) == 2.0**-32
    assert forward_weight(1.0, landmark_ms(gen, half_life), gen, half_life) == 1.0
    assert forward_weight(3.0, landmark_ms(gen, half_life), gen, half_life) == 3.0
    half_life_ms = half_life * 1000.0
    one_later = landmark_ms(gen, half_life) + half_life_ms
    assert forward_weight(1.0, one_later, gen, half_life) == 2.0
    # Read at the event's time it counts its weight, one half-life later half of it.
    assert decayed(2.0, gen, half_life, one_later) == 1.0
    assert decayed(2.0, gen, half_life, one_later + half_life_ms) == 0.5


@FAST
@given(st.integers(min_value=0, max_value=10**6), half_lives)
def test_generation_expires_after_its_read_period(gen: int, half_life: float) -> None:
    """Readers use generation(now); the key outlives every `now` of that generation."""
    end_ms = landmark_ms(gen + 1, half_life)
    expire = expire_at_s(gen, half_life)
    assert isinstance(expire, int)
    assert expire * 1000.0 > end_ms
    # With a margin of at least one half-life.
    assert expire >= end_ms / 1000.0 + half_life
    # ... but not forever: gone before the generation after next is read.
    assert expire * 1000.0 <= landmark_ms(gen + 2, half_life) + 2000.0


@FAST
@given(timestamps, half_lives, st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_readers_find_every_event_in_the_generation_they_read(
    t: int, half_life: float, fraction: float
) -> None:
    """From t until its second generation ends, the generation read at `now` holds the event."""
    gen = generation(t, half_life)
    end = landmark_ms(gen + 2, half_life)
    now = t + fraction * (end - t)
    assume(now < end)
    assert generation(now, half_life) in (gen, gen + 1)
    assert expire_at_s(generation(now, half_life), half_life) * 1000.0 > now


def test_generation_agrees_with_landmarks_at_a_boundary_a_division_rounds_across() -> None:
    # Found by the property test above: now / period rounded up to the next generation while
    # landmark_ms of that generation still lay after now.
    half_life = 4294998.448259045
    gen = generation(137_439_950_663, half_life)
    end = landmark_ms(gen + 2, half_life)
    now = 137_439_950_663 + 0.9999999999999999 * (end - 137_439_950_663)
    assert now < end
    assert generation(now, half_life) in (gen, gen + 1)
    assert landmark_ms(generation(now, half_life), half_life) <= now


# --- decayed counts in memory ----------------------------------------------------------------


@FAST
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c", "d"]),
            st.floats(min_value=0.1, max_value=5.0),
            # Up to three generations of 32 one-second half-lives, in any order.
            st.integers(min_value=0, max_value=3 * GENERATION_HALF_LIVES * 1000),
        ),
        max_size=40,
    )
)
def test_decayed_counts_rank_the_current_generation_as_summed_increments(
    events: list[tuple[str, float, int]],
) -> None:
    """``DecayedCounts`` ranks exactly the increments it reports for the current generation
    (the latest event's), summed in order, ties by key; a reload of the reported
    increments of the current and next generations gives the same ranking."""
    counts = DecayedCounts(1.0)
    reported: dict[int, dict[str, float]] = {}
    for key, weight, offset in events:
        for gen, amount in counts.add(key, weight, TS + offset):
            reported.setdefault(gen, {})
            reported[gen][key] = reported[gen].get(key, 0.0) + amount
    if not events:
        assert counts.current is None and counts.top(3) == []
        return
    current = max(generation(TS + offset, 1.0) for _, _, offset in events)
    assert counts.current == current
    expected = sorted(reported.get(current, {}).items(), key=lambda kv: (-kv[1], kv[0]))
    assert counts.top(4) == expected
    reloaded = DecayedCounts(1.0)
    reloaded.load({gen: reported.get(gen, {}) for gen in (current, current + 1)})
    if expected:
        assert reloaded.top(4) == expected
    # The next generation, once current, ranks what was reported for it.
    later = reported.get(current + 1, {})
    after = int(landmark_ms(current + 1, 1.0))
    counts.add("z", 1.0, after)
    made = dict(counts.add("z", 0.0, after))
    ranked = dict(counts.top(10))
    for key, value in later.items():
        assert ranked[key] == value
    assert set(made) == {current + 1, current + 2}
