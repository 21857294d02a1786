"""What a feature declares to be registered: its name, its agent handler, its HTTP routes.

Factories are plain functions that import their module when called, so importing the
registry loads neither the worker's nor the reader's dependencies: a worker never imports
FastAPI, a reader never imports Faust.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import APIRouter

    from pipeline.api.fast import FastRoute
    from pipeline.core.keys import Keys
    from pipeline.core.settings import Settings
    from pipeline.stream.handler import Handler


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature of the system.

    ``handler`` builds the agent handler of the agent group named ``name`` (None: the
    feature is learned by another group, as related items are by ``personal``); ``router``
    builds its reader routes (None: nothing to serve); ``fast`` builds the fast-lane
    handlers of its hottest routes (``pipeline.api.fast``).
    """

    name: str
    summary: str
    handler: Callable[[Settings, Keys], Handler[Any]] | None = None
    router: Callable[[Settings], APIRouter] | None = None
    fast: Callable[[Settings], list[FastRoute]] | None = None
