"""How many entries a list route may be asked for (``n``): never more than its source holds.

A for-you list holds ``foryou_size`` items, a related list ``related_max_neighbours`` per
relation, and so on: asking for more would be cut silently to what is stored. A
:class:`CountLimit` makes such an ``n`` a 422 that names the limit and the setting that sets
it, and documents both in the OpenAPI description of ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Query

from pipeline.core.ids import InvalidInput
from pipeline.core.settings import ENV_PREFIX, Settings


@dataclass(frozen=True, slots=True)
class CountLimit:
    """The largest ``n`` of one route and why: ``setting`` (an environment variable) when a
    setting binds it, None when the route's own maximum does."""

    cap: int
    default: int
    noun: str
    setting: str | None
    reason: str

    @property
    def sentence(self) -> str:
        """``n`` is at most ... and why, for descriptions and errors."""
        if self.setting is None:
            return f"`n` is at most {self.cap}, the most this route returns."
        return f"`n` is at most {self.cap}: {self.reason} (setting `{self.setting}`)."

    def query(self) -> Any:
        """The ``n`` query parameter: 1 up to the cap, documented with its reason."""
        return Query(
            self.default,
            ge=1,
            description=f"Number of {self.noun}, 1-{self.cap}. {self.sentence}",
            json_schema_extra={"maximum": self.cap},
        )

    def check(self, n: int) -> int:
        """``n`` when within the cap; else :class:`InvalidInput` (422) naming the limit."""
        if n <= self.cap:
            return n
        if self.setting is None:
            raise InvalidInput(
                f"n must be at most {self.cap}, the most this route returns; got {n}"
            )
        raise InvalidInput(
            f"n must be at most {self.cap}: {self.reason} (setting {self.setting}); got {n}"
        )


def count_limit(
    settings: Settings,
    setting: str,
    route_max: int,
    default: int,
    noun: str,
    reason: str,
) -> CountLimit:
    """The limit of a route that returns at most ``route_max`` entries from a source of
    ``getattr(settings, setting)`` entries; ``reason`` says what the setting holds, with
    ``{cap}`` where the number goes."""
    held = int(getattr(settings, setting))
    if held < route_max:
        variable = ENV_PREFIX + setting.upper()
        return CountLimit(held, min(default, held), noun, variable, reason.format(cap=held))
    return CountLimit(route_max, min(default, route_max), noun, None, "")
