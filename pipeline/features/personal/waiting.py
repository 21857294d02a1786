"""The line of users whose for-you lists wait for a recompute (the personal agent's).

Behind a backlog a batch recomputes the lists it can within its budget; the users left wait
here, in the order they will get one: newcomers (no list yet: the reader serves them
trending) at the head, then first come, first served. Each operation costs what it adds or
takes, never the length of the line: behind a long backlog of a large user base it holds
up to 100,000 users. With that many waiting (in process, personal group, batches of 5,000
events), passes over the whole line took a batch from 0.15-0.25 s to 0.19-0.33 s, exactly
while the worker was behind, and a start read all 100,000 users before its first list
(2.3 s); the agent now reads the head of the line only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Container, Iterable, Iterator
from itertools import islice, takewhile
from time import perf_counter

# Lists computed per call within a budget: the time is checked between calls.
CHUNK = 64

# (users, budget_s) -> the users left to do: writes their lists, in order, for ``budget_s``
# seconds (0: no limit; at least one list).
WriteLists = Callable[[list[str], float], list[str]]


class WaitingLine:
    """Users whose lists wait, head first."""

    def __init__(self, users: Iterable[str] = ()) -> None:
        self._users: OrderedDict[str, None] = OrderedDict.fromkeys(users)

    def __contains__(self, user: object) -> bool:
        return user in self._users

    def __iter__(self) -> Iterator[str]:
        return iter(self._users)

    def __len__(self) -> int:
        return len(self._users)

    def discard(self, user: str) -> None:
        self._users.pop(user, None)

    def head(self, n: int, skip: Container[str] = ()) -> list[str]:
        """The first ``n`` users of the line that are not in ``skip`` (costs ``n`` and the
        users of ``skip`` before them)."""
        return list(islice((user for user in self._users if user not in skip), n))

    def enqueue(
        self, first: list[str], touched: set[str], arrivals: Iterable[str], gone: set[str]
    ) -> list[str]:
        """A batch's users into the line: newcomers ``first`` at its head, in order; the
        other ``touched`` users not in it yet at its tail, those of ``arrivals`` in that
        order, then the rest by id; ``gone`` out. Returns the users put in, ``first``
        first."""
        users = self._users
        for user in gone:
            users.pop(user, None)
        added = [user for user in first if user not in users]
        for user in reversed(first):
            users[user] = None
            users.move_to_end(user, last=False)
        seen = set(first)
        later = []
        for user in arrivals:
            if user in touched and user not in users:
                later.append(user)
            seen.add(user)
        later += sorted(user for user in touched - seen if user not in users)
        users.update(dict.fromkeys(later))
        return added + later

    def serve(
        self,
        write_lists: WriteLists,
        first: list[str],
        budget_s: float,
        ready: Callable[[str], bool],
    ) -> list[str]:
        """The lists (``write_lists``) of newcomers ``first`` (half of ``budget_s`` at most),
        then of the line from its head, until ``budget_s`` has passed (0: no limit; at least
        one list each) or a user not ``ready`` (state not in memory) comes up. The users
        done leave the line; returns them."""
        started = perf_counter()
        users = self._users
        done: list[str] = []
        skip: set[str] = set()
        if first:
            skip = set(write_lists(first, budget_s / 2))
            done = [user for user in first if user not in skip]
            for user in done:
                users.pop(user, None)
        called = False
        while users:
            remaining = budget_s - (perf_counter() - started)
            if budget_s and called and remaining <= 0:
                break
            waiting = (user for user in users if user not in skip)
            chunk = list(takewhile(ready, islice(waiting, CHUNK)))
            if not chunk:
                break
            left = set(write_lists(chunk, max(remaining, 1e-9) if budget_s else 0.0))
            called = True
            for user in chunk:
                if user not in left:
                    del users[user]
                    done.append(user)
            if left:
                break
        return done
