"""Log output of every process (worker, reader, collector, dev): text or one JSON object per
line (``PIPELINE_LOG_FORMAT``), secrets masked either way.

A log line never shows a secret: passwords in URLs (``redis://user:***@host``) are masked by
pattern, and the configured secrets themselves (API keys, the SASL and Redis passwords) are
replaced wherever they appear, whatever logged them.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

MASK = "***"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# scheme://user:password@ -> the password part (user names and hosts stay readable).
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):([^@\s/]+)@")
# Shorter values are too likely to appear by chance in ordinary text to be replaced.
MIN_SECRET_CHARS = 4


def mask_url(url: str) -> str:
    """``url`` with the password of its user part masked: ``redis://:***@host:6379/0``."""
    return _URL_PASSWORD.sub(rf"\1:{MASK}@", url)


class Redactor:
    """Masks URL passwords and the given secret values in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        found = {s for s in secrets if len(s) >= MIN_SECRET_CHARS}
        # Longest first: a secret containing another is masked whole.
        self.secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = mask_url(text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class TextFormatter(logging.Formatter):
    """``time level logger: message``, secrets masked."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``service``, ``message``, and ``exception`` with the traceback; secrets masked."""

    def __init__(self, service: str = "", redactor: Redactor | None = None) -> None:
        super().__init__()
        self.service = service
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        body: dict[str, Any] = {
            "time": f"{seconds}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": self.redactor(record.getMessage()),
        }
        if record.exc_info:
            body["exception"] = self.redactor(self.formatException(record.exc_info))
        if record.stack_info:
            body["stack"] = self.redactor(self.formatStack(record.stack_info))
        return json.dumps(body, ensure_ascii=False)


def logging_config(
    log_format: str,
    level: str | int = "INFO",
    service: str = "",
    secrets: Iterable[str] = (),
    loggers: Iterable[str] = (),
) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` mapping: one handler on stderr in ``log_format``
    for the root logger and for ``loggers`` (which then do not propagate: uvicorn's)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {log_format!r}")
    redactor = Redactor(secrets)
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service, "redactor": redactor}
        if log_format == "json"
        else {"()": TextFormatter, "redactor": redactor}
    )
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    handler = {"class": "logging.StreamHandler", "formatter": "pipeline", "stream": sys.stderr}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"pipeline": formatter},
        "handlers": {"pipeline": handler},
        "loggers": {
            name: {"handlers": ["pipeline"], "level": level, "propagate": False} for name in loggers
        },
        "root": {"handlers": ["pipeline"], "level": level},
    }


def configure_logging(
    log_format: str, level: str | int = "INFO", service: str = "", secrets: Iterable[str] = ()
) -> None:
    """Apply :func:`logging_config` to this process."""
    logging.config.dictConfig(logging_config(log_format, level, service, secrets))
