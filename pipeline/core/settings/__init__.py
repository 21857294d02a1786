"""Settings: one frozen object, built by :func:`load_settings`, never at import time.

This is the only place where defaults are written: every feature builds its configuration
from these fields and has no defaults of its own.

Every field can be set from the environment with the ``PIPELINE_`` prefix
(``PIPELINE_REDIS_URL=redis://...``); mappings take JSON
(``PIPELINE_TRENDING_WINDOWS='{"1h": 3600}'``). ``docker-compose.yml`` uses the same names.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from pipeline.core.feedback import Feedback
from pipeline.core.logs import mask_url
from pipeline.core.settings.learning import (
    DEFAULT_EVENT_WEIGHTS,
    DEFAULT_TRENDING_KINDS,
    DEFAULT_WINDOWS,
    LearningSettings,
)
from pipeline.core.settings.services import ServiceSettings

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "DEFAULT_TRENDING_KINDS",
    "DEFAULT_WINDOWS",
    "ENV_PREFIX",
    "Settings",
    "config_of",
    "describe_settings",
    "load_settings",
    "secret_values",
    "to_env",
]

ENV_PREFIX = "PIPELINE_"
C = TypeVar("C")


# Services first: fields are listed (describe_settings, to_env) base by base, last base first.
class Settings(LearningSettings, ServiceSettings):
    """Everything an operator can tune. Frozen: pass a new object instead of mutating."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    @property
    def feedback(self) -> Feedback:
        """The feedback rule with these weights and this rating threshold."""
        return Feedback(weights=self.event_weights, positive_rating=self.positive_rating)

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{host}" for host in self.kafka_bootstrap.split(","))

    def __repr_args__(self) -> Any:
        # Printed settings (errors, test reports) never show a password in the Redis URL.
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "redis_url" else value


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret (API keys, SASL and Redis passwords, the password of the
    Redis URL): what log output masks wherever it appears."""
    found = [*settings.read_api_keys, *settings.write_api_keys]
    for name in ("kafka_sasl_password", "redis_password"):
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
    password = urlsplit(settings.redis_url).password
    if password:
        found.append(unquote(password))
        found.append(password)
    return [secret for secret in found if secret]


def config_of(cls: type[C], settings: Settings, prefix: str, **given: Any) -> C:
    """A feature's configuration (a dataclass) from settings: each field ``name`` not in
    ``given`` is the setting ``prefix + name``. Feature configs have no defaults of their own;
    this is how they get the operator's values."""
    values = {
        field.name: getattr(settings, prefix + field.name)
        for field in dataclasses.fields(cls)  # type: ignore[arg-type]
        if field.name not in given
    }
    return cls(**values, **given)


log = logging.getLogger(__name__)

# Settings that were renamed: old environment variable -> what replaced it.
RENAMED = {
    "PIPELINE_EXPLORATION_NEW_DAYS": "PIPELINE_NEW_ITEM_DAYS",
    "PIPELINE_CONTENT_NEW_ITEM_S": "PIPELINE_NEW_ITEM_DAYS (in days)",
}
# Variables of the test suite (its Kafka and Redis), not settings.
TEST_PREFIX = ENV_PREFIX + "TEST_"


def unknown_environment(environ: Mapping[str, str]) -> list[str]:
    """The ``PIPELINE_*`` variables of ``environ`` that name no setting (a typo, or a
    setting that was renamed), sorted: the settings ignore them."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(
        name
        for name in environ
        if name.upper().startswith(ENV_PREFIX)
        and not name.upper().startswith(TEST_PREFIX)
        and name.upper() not in known
    )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment; keyword overrides win over it. Variables named
    like settings that are none are logged (names only: values may be secrets)."""
    for name in unknown_environment(os.environ):
        hint = RENAMED.get(name.upper())
        log.warning(
            "%s is not a setting and is ignored%s (`pipeline settings` lists them)",
            name,
            f"; it was renamed {hint}" if hint else "",
        )
    return Settings(**overrides)


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) of every setting, for docs and --help."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
        # Mappings print as JSON: the form the environment variable takes.
        text = json.dumps(default) if isinstance(default, dict | list) else str(default)
        rows.append((ENV_PREFIX + name.upper(), text, field.description or ""))
    return rows


def to_env(settings: Settings) -> dict[str, str]:
    """The environment that rebuilds ``settings`` in a child process."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        # A child process needs the secret itself; str() of a SecretStr is its mask.
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        env[ENV_PREFIX + name.upper()] = text
    return env
