"""Users as data: attribute records of users (``POST /v1/users``, topic ``catalog.users``).

- ``agent.py``: agent group ``users``: a user's latest record replaces the earlier one in
  ``{p}:user:{user_id}:attributes``; a ``forget`` (``DELETE /v1/users/{user_id}``) erases it;
- ``read.py``: a user's attributes, for the features that use them (nothing serves them over
  HTTP: they may be private).
"""

from __future__ import annotations

from typing import Any

from pipeline.features.base import Feature


def _handler(settings: Any, keys: Any) -> Any:
    from pipeline.features.users.agent import UsersHandler

    return UsersHandler(settings, keys)


FEATURE = Feature("users", "user records: attributes of users", _handler)
