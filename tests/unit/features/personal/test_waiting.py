"""The waiting line of for-you lists: its order, its budget, and work bounded by what a
batch adds or takes, whatever the length of the line."""

from __future__ import annotations

from pipeline.features.personal.waiting import CHUNK, WaitingLine


class Lists:
    """A ``write_lists`` that records each call and leaves the users past ``per_call``."""

    def __init__(self, per_call: int | None = None) -> None:
        self.per_call = per_call
        self.calls: list[list[str]] = []

    def __call__(self, users: list[str], budget_s: float) -> list[str]:
        self.calls.append(list(users))
        if self.per_call is None:
            return []
        return users[self.per_call :]


def test_newcomers_go_to_the_head_and_the_others_to_the_tail_in_event_order() -> None:
    line = WaitingLine(["old1", "old2", "gone"])
    added = line.enqueue(
        first=["n1", "n2"],
        touched={"n1", "n2", "old2", "b", "a", "merged-target"},
        arrivals=["b", "old2", "n1", "a", "n2"],
        gone={"gone"},
    )
    assert added == ["n1", "n2", "b", "a", "merged-target"]
    assert list(line) == ["n1", "n2", "old1", "old2", "b", "a", "merged-target"]
    # A newcomer already waiting moves to the head; nothing is added twice.
    assert line.enqueue(["a"], {"a"}, ["a"], set()) == []
    assert list(line)[:2] == ["a", "n1"] and len(line) == 7


def test_without_a_budget_every_list_is_done_head_first() -> None:
    line = WaitingLine(f"u{i}" for i in range(150))
    lists = Lists()
    done = line.serve(lists, ["new"], 0.0, lambda user: True)
    assert done == ["new", *(f"u{i}" for i in range(150))]
    assert not line
    assert [len(call) for call in lists.calls] == [1, CHUNK, CHUNK, 150 - 2 * CHUNK]


def test_a_spent_budget_still_gives_one_newcomer_and_one_waiting_user_a_list() -> None:
    line = WaitingLine(["w1", "w2"])
    line.enqueue(["n1", "n2"], {"n1", "n2"}, ["n1", "n2"], set())
    lists = Lists(per_call=1)
    done = line.serve(lists, ["n1", "n2"], 1e-9, lambda user: True)
    # n2 keeps its place at the head, but the refreshes' share of the budget is theirs.
    assert done == ["n1", "w1"]
    assert list(line) == ["n2", "w2"]


def test_the_line_stops_at_a_user_whose_state_is_not_in_memory() -> None:
    line = WaitingLine(["a", "b", "c", "d"])
    done = line.serve(Lists(), [], 0.0, lambda user: user != "c")
    assert done == ["a", "b"] and list(line) == ["c", "d"]


def test_a_batch_costs_what_it_adds_and_takes_not_the_length_of_the_line() -> None:
    """100,000 users wait; a batch of three users under a budget that allows one list per
    call looks at one chunk of the line, not at the whole of it."""
    line = WaitingLine(f"u{i}" for i in range(100_000))
    asked: list[str] = []

    def ready(user: str) -> bool:
        asked.append(user)
        return True

    line.enqueue(["n"], {"n", "u5", "x"}, ["n", "u5", "x"], set())
    lists = Lists(per_call=1)
    done = line.serve(lists, ["n"], 1e-9, ready)
    assert done == ["n", "u0"]
    assert len(asked) <= CHUNK
    assert [len(call) for call in lists.calls] == [1, CHUNK]
    assert len(line) == 100_000 and list(line)[-1] == "x"


def test_the_head_of_the_line_skips_the_users_asked_to() -> None:
    line = WaitingLine(["n1", "n2", "w1", "w2", "w3"])
    assert line.head(2) == ["n1", "n2"]
    assert line.head(2, {"n1", "n2", "w2"}) == ["w1", "w3"]
